use arkiv_queue::lapin::BasicProperties;
use arkiv_queue::Broker;
use arkiv_tests::TestConfig;

#[tokio::test]
async fn a_confirmed_publish_round_trips_through_a_quorum_queue() {
    let settings = TestConfig::isolated("queue").settings();
    let broker = Broker::connect(settings.rabbitmq().unwrap()).await.unwrap();
    let queue = broker.declare_quorum_queue("roundtrip").await.unwrap();
    // Declaring again is idempotent.
    assert_eq!(
        broker.declare_quorum_queue("roundtrip").await.unwrap(),
        queue
    );

    let publisher = broker.publisher().await.unwrap();
    for i in 0..10u8 {
        publisher
            .publish("", &queue, &[i; 64], BasicProperties::default())
            .await
            .expect("RabbitMQ confirms the publish");
    }

    let mut consumer = broker.consume(&queue, 4).await.unwrap();
    for i in 0..10u8 {
        let delivery = consumer.next().await.unwrap();
        assert_eq!(delivery.data, vec![i; 64], "in order, intact");
        arkiv_queue::ack(&delivery).await.unwrap();
    }
    broker.delete_queue(&queue).await.unwrap();
}

#[tokio::test]
async fn an_unacked_delivery_is_redelivered_after_the_consumer_goes_away() {
    let settings = TestConfig::isolated("redeliver").settings();
    let queue = {
        let broker = Broker::connect(settings.rabbitmq().unwrap()).await.unwrap();
        let queue = broker.declare_quorum_queue("redeliver").await.unwrap();
        let publisher = broker.publisher().await.unwrap();
        publisher
            .publish("", &queue, b"work", BasicProperties::default())
            .await
            .unwrap();
        let mut consumer = broker.consume(&queue, 1).await.unwrap();
        let delivery = consumer.next().await.unwrap();
        assert!(!delivery.redelivered);
        broker.close().await.unwrap(); // crash before the ack
        queue
    };
    let broker = Broker::connect(settings.rabbitmq().unwrap()).await.unwrap();
    let mut consumer = broker.consume(&queue, 1).await.unwrap();
    let delivery = consumer.next().await.unwrap();
    assert_eq!(delivery.data, b"work");
    assert!(delivery.redelivered);
    arkiv_queue::ack(&delivery).await.unwrap();
    broker.delete_queue(&queue).await.unwrap();
}
