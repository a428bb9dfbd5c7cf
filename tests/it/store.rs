use arkiv_store::{ObjectStore, StoreError};
use arkiv_tests::TestConfig;
use bytes::Bytes;

fn store() -> ObjectStore {
    let settings = TestConfig::isolated("store").settings();
    ObjectStore::new(settings.s3().unwrap())
}

#[tokio::test]
async fn put_get_delete_in_every_region_bucket() {
    let store = store();
    store
        .check()
        .await
        .expect("every region bucket is reachable");
    let regions: Vec<_> = store.regions().cloned().collect();
    assert!(regions.len() >= 3, "at least eu, uk and us: {regions:?}");
    for region in &regions {
        let key = format!("t/probe/c/{region}");
        let body = Bytes::from(format!("sealed bytes for {region}").into_bytes());
        store.put(region, &key, body.clone()).await.unwrap();
        assert_eq!(store.get(region, &key).await.unwrap(), body);
        assert_eq!(
            store.get_range(region, &key, 7, 5).await.unwrap(),
            body.slice(7..12)
        );
        assert!(store.exists(region, &key).await.unwrap());
        store.delete(region, &key).await.unwrap();
        assert!(!store.exists(region, &key).await.unwrap());
        assert!(matches!(
            store.get(region, &key).await,
            Err(StoreError::NotFound { .. })
        ));
    }
}

#[tokio::test]
async fn an_object_lands_only_in_its_regions_bucket() {
    let store = store();
    let eu = "eu".parse().unwrap();
    store
        .put(&eu, "t/x/c/only-eu", Bytes::from_static(b"x"))
        .await
        .unwrap();
    for region in store.regions() {
        let found = store.exists(region, "t/x/c/only-eu").await.unwrap();
        assert_eq!(found, region == &eu, "region {region}");
    }
    store.delete(&eu, "t/x/c/only-eu").await.unwrap();
}

#[tokio::test]
async fn list_and_delete_prefix_page_through_many_objects() {
    let store = store();
    let us = "us".parse().unwrap();
    for i in 0..1_050 {
        store
            .put(&us, &format!("t/many/c/{i:05}"), Bytes::from_static(b"."))
            .await
            .unwrap();
    }
    store
        .put(&us, "t/other/c/1", Bytes::from_static(b"."))
        .await
        .unwrap();
    assert_eq!(store.list(&us, "t/many/").await.unwrap().len(), 1_050);
    assert_eq!(store.delete_prefix(&us, "t/many/").await.unwrap(), 1_050);
    assert!(store.list(&us, "t/many/").await.unwrap().is_empty());
    assert_eq!(store.list(&us, "t/other/").await.unwrap(), ["t/other/c/1"]);
    store.delete_prefix(&us, "").await.unwrap();
}

#[tokio::test]
async fn an_unconfigured_region_is_an_error_not_a_default() {
    let store = store();
    let mars = "mars".parse().unwrap();
    let err = store.put(&mars, "k", Bytes::new()).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownRegion(_)));
    assert!(err.to_string().contains("s3.buckets.mars"));
}
