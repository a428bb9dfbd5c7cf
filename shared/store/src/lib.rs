//! Arkiv's object store: any S3 API (Garage locally, AWS S3, Ceph, MinIO in
//! production), one bucket per data-residency region.
//!
//! [`ObjectStore`] knows bytes, regions and keys; it does not know what the
//! bytes mean and never sees plaintext customer data (callers seal first).
//! Every operation names a [`Region`], and a region without a configured
//! bucket is an error, so data cannot drift into another region's bucket by
//! default.
//!
//! Object keys are built by callers from tenant ids and content ids only
//! (`t/{tenant}/c/{chunk}`): nothing in a key names a person. The configured
//! `s3.key_prefix` is put in front of every key, which gives tests an
//! isolated namespace in shared buckets.
//!
//! ```no_run
//! # async fn demo(settings: &arkiv_config::S3Settings) -> Result<(), arkiv_store::StoreError> {
//! let store = arkiv_store::ObjectStore::new(settings);
//! let eu: arkiv_domain::Region = "eu".parse().unwrap();
//! store.put(&eu, "t/1/c/abc", bytes::Bytes::from_static(b"sealed")).await?;
//! assert_eq!(&store.get(&eu, "t/1/c/abc").await?[..], b"sealed");
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use arkiv_config::S3Settings;
use arkiv_domain::Region;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, RequestChecksumCalculation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::Bytes;
use secrecy::ExposeSecret;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Permanent: configuration does not list a bucket for this region.
    #[error("no bucket is configured for region {0} (setting s3.buckets.{0})")]
    UnknownRegion(Region),
    /// Permanent for this key: the object does not exist.
    #[error("object {key} not found in bucket {bucket}")]
    NotFound { bucket: String, key: String },
    /// Usually transient: the S3 server failed or could not be reached.
    #[error("S3 {operation} on bucket {bucket} failed: {message}")]
    Backend {
        operation: &'static str,
        bucket: String,
        message: String,
    },
}

impl StoreError {
    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Backend { .. })
    }
}

/// An S3 object store with a bucket per region.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    client: aws_sdk_s3::Client,
    buckets: BTreeMap<Region, String>,
    key_prefix: String,
}

impl ObjectStore {
    /// Build a client from settings. No request is made until the first call
    /// (use [`ObjectStore::check`] at start-up).
    pub fn new(settings: &S3Settings) -> Self {
        let credentials = Credentials::new(
            settings.access_key.expose_secret(),
            settings.secret_key.expose_secret(),
            None,
            None,
            "arkiv-config",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(settings.region.clone()))
            .endpoint_url(settings.endpoint.as_str().trim_end_matches('/'))
            .credentials_provider(credentials)
            .force_path_style(settings.path_style)
            // Checksums only where the S3 API requires them: not every S3
            // server (Garage, older Ceph) accepts the SDK's default trailers.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
            buckets: settings.buckets.clone(),
            key_prefix: settings.key_prefix.clone(),
        }
    }

    /// The same store with `prefix` appended to the key prefix.
    pub fn with_key_prefix(&self, prefix: &str) -> Self {
        let mut store = self.clone();
        store.key_prefix.push_str(prefix);
        store
    }

    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.buckets.keys()
    }

    pub fn bucket(&self, region: &Region) -> Result<&str, StoreError> {
        self.buckets
            .get(region)
            .map(String::as_str)
            .ok_or_else(|| StoreError::UnknownRegion(region.clone()))
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }

    /// Reachable, with credentials that can see every region's bucket.
    pub async fn check(&self) -> Result<(), StoreError> {
        for bucket in self.buckets.values() {
            self.client
                .head_bucket()
                .bucket(bucket)
                .send()
                .await
                .map_err(|e| backend("HeadBucket", bucket, e))?;
        }
        Ok(())
    }

    /// Store an object. Its body is not part of the request signature
    /// (`UNSIGNED-PAYLOAD`): hashing every byte with SHA-256 here and again
    /// in the S3 server cost more CPU than sealing it. What is stored is
    /// sealed (AES-256-GCM) and every chunk's tag and keyed hash are checked
    /// when it is read, so corruption on the way is still found.
    pub async fn put(&self, region: &Region, key: &str, body: Bytes) -> Result<(), StoreError> {
        let bucket = self.bucket(region)?;
        self.client
            .put_object()
            .bucket(bucket)
            .key(self.full_key(key))
            .body(ByteStream::from(body))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| backend("PutObject", bucket, e))?;
        Ok(())
    }

    pub async fn get(&self, region: &Region, key: &str) -> Result<Bytes, StoreError> {
        self.get_inner(region, key, None).await
    }

    /// `len` bytes from `offset`: how one chunk is read out of a pack.
    pub async fn get_range(
        &self,
        region: &Region,
        key: &str,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, StoreError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let range = format!("bytes={offset}-{}", offset + len - 1);
        self.get_inner(region, key, Some(range)).await
    }

    async fn get_inner(
        &self,
        region: &Region,
        key: &str,
        range: Option<String>,
    ) -> Result<Bytes, StoreError> {
        let bucket = self.bucket(region)?;
        let full_key = self.full_key(key);
        let output = self
            .client
            .get_object()
            .bucket(bucket)
            .key(&full_key)
            .set_range(range)
            .send()
            .await
            .map_err(|e| {
                if matches!(e.as_service_error(), Some(se) if se.is_no_such_key()) {
                    StoreError::NotFound {
                        bucket: bucket.to_owned(),
                        key: full_key.clone(),
                    }
                } else {
                    backend("GetObject", bucket, e)
                }
            })?;
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Backend {
                operation: "GetObject",
                bucket: bucket.to_owned(),
                message: format!("reading the body: {e}"),
            })?;
        Ok(body.into_bytes())
    }

    /// Whether an object exists.
    pub async fn exists(&self, region: &Region, key: &str) -> Result<bool, StoreError> {
        let bucket = self.bucket(region)?;
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.as_service_error(), Some(se) if se.is_not_found()) => Ok(false),
            Err(e) => Err(backend("HeadObject", bucket, e)),
        }
    }

    /// Delete one object; deleting a missing object is not an error (S3 semantics).
    pub async fn delete(&self, region: &Region, key: &str) -> Result<(), StoreError> {
        let bucket = self.bucket(region)?;
        self.client
            .delete_object()
            .bucket(bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| backend("DeleteObject", bucket, e))?;
        Ok(())
    }

    /// Every key under `prefix` (relative to the store's key prefix), paging
    /// through ListObjectsV2.
    pub async fn list(&self, region: &Region, prefix: &str) -> Result<Vec<String>, StoreError> {
        let bucket = self.bucket(region)?;
        let full_prefix = self.full_key(prefix);
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| backend("ListObjectsV2", bucket, e))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    let relative = key.strip_prefix(&self.key_prefix).unwrap_or(key);
                    keys.push(relative.to_owned());
                }
            }
        }
        Ok(keys)
    }

    /// Delete every object under `prefix`, 1,000 keys per request; returns
    /// how many were deleted.
    pub async fn delete_prefix(&self, region: &Region, prefix: &str) -> Result<u64, StoreError> {
        let bucket = self.bucket(region)?;
        let keys = self.list(region, prefix).await?;
        for batch in keys.chunks(1000) {
            let objects = batch
                .iter()
                .map(|k| {
                    ObjectIdentifier::builder()
                        .key(self.full_key(k))
                        .build()
                        .expect("key is set")
                })
                .collect();
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .expect("objects are set");
            let output = self
                .client
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| backend("DeleteObjects", bucket, e))?;
            if let Some(error) = output.errors().first() {
                return Err(StoreError::Backend {
                    operation: "DeleteObjects",
                    bucket: bucket.to_owned(),
                    message: format!(
                        "{} of {} keys failed, first: {}",
                        output.errors().len(),
                        batch.len(),
                        error.message().unwrap_or("no message")
                    ),
                });
            }
        }
        Ok(keys.len() as u64)
    }
}

fn backend<E, R>(operation: &'static str, bucket: &str, error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = match error.code() {
        Some(code) => format!("{code}: {}", error.message().unwrap_or_default()),
        None => DisplayErrorContext(&error).to_string(),
    };
    StoreError::Backend {
        operation,
        bucket: bucket.to_owned(),
        message,
    }
}
