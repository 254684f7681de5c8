//! The test server starts (as the `postgres` user when run as root), hands out
//! separate databases, and enforces passwords for the password group.

#[tokio::test]
async fn fresh_databases_are_separate_and_usable() {
    let server = tachigo_testkit::postgres();
    let first = server.fresh_database().await;
    let second = server.fresh_database().await;
    assert_ne!(first, second);
    for url in [&first, &second] {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connecting to a fresh database");
        tokio::spawn(connection);
        let row = client
            .query_one("SELECT current_database(), current_setting('fsync')", &[])
            .await
            .unwrap();
        let name: String = row.get(0);
        assert!(url.ends_with(&name), "{url} is database {name}");
        assert!(name.starts_with("tachigo_test_"));
        let fsync: String = row.get(1);
        assert_eq!(fsync, "on");
    }
}

#[tokio::test]
async fn password_roles_refuse_a_wrong_password() {
    let server = tachigo_testkit::postgres();
    let Some(role) = server.role_with_password("right-horse").await else {
        return; // an external server: its authentication rules are its own
    };
    let port = server
        .admin_url()
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let wrong = format!("postgres://{role}:wrong@127.0.0.1:{port}/postgres");
    assert!(tokio_postgres::connect(&wrong, tokio_postgres::NoTls)
        .await
        .is_err());
    let right = format!("postgres://{role}:right-horse@127.0.0.1:{port}/postgres");
    assert!(tokio_postgres::connect(&right, tokio_postgres::NoTls)
        .await
        .is_ok());
}
