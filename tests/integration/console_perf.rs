//! How long the console's pages take with a populated store: 1000 people in
//! 10 groups, 20 apps, 50 000 audit events over 30 days. Each page is
//! fetched 20 times over HTTP; the median and the slowest are printed, and
//! the median must stay under 50 ms. Ignored by default (it measures this
//! machine, and the test build is unoptimized): run it with
//! `cargo test --test integration console_perf -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use crate::common::{Backend, TestApp};
use crate::console::{ADMIN, add_admin, signed_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures this machine; run explicitly"]
async fn sqlite() {
    console_pages_are_fast_with_a_populated_store(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures this machine; run explicitly"]
async fn postgres() {
    console_pages_are_fast_with_a_populated_store(Backend::Postgres).await
}

async fn populate(app: &TestApp) {
    let store = latch::store::Store::connect(&app.database_url).await.expect("store");
    let now = latch::clock::now();
    let groups: Vec<String> = (0..10).map(|n| format!("team{n}")).collect();
    for group in &groups {
        store.create_group(group, now).await.expect("group");
    }
    for n in 0..1000 {
        let user = latch::store::NewUser {
            username: format!("person{n:04}"),
            email: format!("person{n:04}@example.com"),
            name: format!("Person {n}"),
            // Nobody signs in as them: any text stands for a hash.
            password_hash: "unused".into(),
        };
        store.create_user(user, &groups[n % 10..n % 10 + 1], now).await.expect("user");
    }
    for n in 0..20 {
        let slug = format!("app{n:02}");
        let uri = format!("https://{slug}.example.com/cb");
        app.admin(&["app", "add", &slug, "--name", &slug, "--redirect-uri", &uri]).await;
    }
    let kinds = ["login_success", "tokens_issued", "login_failure", "refresh", "logout"];
    let mut batch = Vec::new();
    for n in 0..50_000_i64 {
        let username = format!("person{:04}", n % 1000);
        let slug = format!("app{:02}", n % 20);
        let kind = kinds[(n % 5) as usize];
        let actor = latch::audit::Actor {
            username: Some(&username),
            app: Some(&slug),
            ip: Some("192.0.2.1"),
            ..Default::default()
        };
        let detail = (kind == "tokens_issued").then(|| "authorization_code".to_owned());
        batch.push(latch::audit::event(kind, &actor, detail, now - (n * 30 * 86_400 / 50_000)));
        if batch.len() == 1000 {
            store.record_events(&batch).await.expect("events");
            batch.clear();
        }
    }
    store.close().await;
}

async fn console_pages_are_fast_with_a_populated_store(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_admin(&app, ADMIN).await;
    populate(&app).await;
    let console = signed_in(&app, ADMIN).await;
    let pages = [
        "/admin",
        "/admin/users",
        "/admin/users?q=person09&page=0",
        "/admin/users?page=19",
        "/admin/users/person0500",
        "/admin/groups",
        "/admin/groups/team3",
        "/admin/apps",
        "/admin/apps/app07",
        "/admin/keys",
        "/admin/events",
        "/admin/events?user=person0042",
        "/admin/events?app=app03&kind=login_failure&page=3",
    ];
    let mut slow = Vec::new();
    eprintln!("{backend:?}: page, median, slowest of 20");
    for page in pages {
        let mut times = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            console.page(page).await;
            times.push(started.elapsed());
        }
        times.sort();
        let (median, slowest) = (times[10], times[19]);
        eprintln!("{page:<50} {:>7.1} ms {:>7.1} ms", ms(median), ms(slowest));
        if median >= Duration::from_millis(50) {
            slow.push(page);
        }
    }
    assert!(slow.is_empty(), "slower than 50 ms: {slow:?}");
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
