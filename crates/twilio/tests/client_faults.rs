//! The client against a mock server, for what a real server cannot be made to do on demand: rate limits,
//! server errors, slowness, broken bodies, plus the exact shape of what goes over the wire. The happy paths
//! run against the real local engine.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::StreamExt as _;
use serde_json::json;
use twilio::client::taskrouter::{CreateTask, TaskFilter, UpdateWorker};
use twilio::client::Sleep;
use twilio::models::TaskAssignmentStatus;
use twilio::{Client, Config, Error};
use wiremock::matchers::{body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const AC: &str = "AC00000000000000000000000000000001";
const WS: &str = "WS00000000000000000000000000000002";

/// Records every backoff instead of waiting it out.
#[derive(Clone, Default)]
struct RecordedSleeps(Arc<Mutex<Vec<Duration>>>);

impl RecordedSleeps {
    fn taken(&self) -> Vec<Duration> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Sleep for RecordedSleeps {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        if let Ok(mut sleeps) = self.0.lock() {
            sleeps.push(duration);
        }
        Box::pin(async {})
    }
}

fn mock_client(server: &MockServer) -> (Client, RecordedSleeps) {
    let mut config = Config::new(AC, "auth-token").workspace(WS).base_urls(server.uri(), server.uri());
    config.max_retries = 2;
    config.timeout = Duration::from_secs(5);
    let sleeps = RecordedSleeps::default();
    let client = Client::new(config).map(|c| c.with_sleep(sleeps.clone()));
    match client {
        Ok(client) => (client, sleeps),
        Err(e) => panic!("client: {e}"),
    }
}

fn workspace_json() -> serde_json::Value {
    json!({"sid": WS, "account_sid": AC, "friendly_name": "Demo", "multi_task_enabled": true})
}

fn workspace_path() -> String {
    format!("/v1/Workspaces/{WS}")
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

/// Serves `first` to the first workspace fetch and the workspace to every later one.
async fn workspace_after(server: &MockServer, first: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(workspace_path()))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(workspace_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(workspace_json()))
        .mount(server)
        .await;
}

/// Serves a page of tasks holding WT1 whose `next_page_url` is `next`, at `at` (any path when `None`).
async fn one_task_page(server: &MockServer, at: Option<String>, next: String) {
    let page = ResponseTemplate::new(200).set_body_json(json!({
        "meta": {"key": "tasks", "next_page_url": next},
        "tasks": [task_json("WT1")],
    }));
    match at {
        Some(at) => Mock::given(method("GET")).and(path(at)).respond_with(page).mount(server).await,
        None => Mock::given(method("GET")).respond_with(page).mount(server).await,
    }
}

#[tokio::test]
async fn rate_limit_is_retried_after_the_servers_retry_after() -> Result<(), Error> {
    let server = MockServer::start().await;
    let limited = ResponseTemplate::new(429)
        .insert_header("Retry-After", "7")
        .set_body_json(json!({"code": 20429, "message": "Too Many Requests", "status": 429}));
    workspace_after(&server, limited).await;
    let (client, sleeps) = mock_client(&server);
    let workspace = client.fetch_workspace().await?;
    assert_eq!(workspace.friendly_name.as_deref(), Some("Demo"));
    assert_eq!(sleeps.taken(), vec![Duration::from_secs(7)]);
    assert_eq!(requests(&server).await.len(), 2);
    Ok(())
}

#[tokio::test]
async fn server_error_on_get_is_retried_with_backoff() -> Result<(), Error> {
    let server = MockServer::start().await;
    workspace_after(&server, ResponseTemplate::new(500).set_body_string("oops")).await;
    let (client, sleeps) = mock_client(&server);
    client.fetch_workspace().await?;
    let taken = sleeps.taken();
    // First retry: half of the 500 ms base fixed, the other half jittered.
    assert_eq!(taken.len(), 1);
    assert!(
        taken.iter().all(|d| *d >= Duration::from_millis(250) && *d <= Duration::from_millis(500)),
        "{taken:?}"
    );
    Ok(())
}

#[tokio::test]
async fn retries_stop_after_max_retries_with_the_last_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(workspace_path()))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"code": 20503, "message": "Service unavailable"})),
        )
        .mount(&server)
        .await;
    let (client, sleeps) = mock_client(&server);
    let result = client.fetch_workspace().await;
    assert!(matches!(&result, Err(Error::Api { status: 503, code: 20503, .. })), "{result:?}");
    assert_eq!(requests(&server).await.len(), 3, "one attempt plus max_retries = 2");
    let taken = sleeps.taken();
    assert_eq!(taken.len(), 2);
    // Exponential: the second wait is drawn from [500 ms, 1 s], the first from [250 ms, 500 ms].
    assert!(taken[1] >= Duration::from_millis(500) && taken[1] <= Duration::from_secs(1), "{taken:?}");
}

#[tokio::test]
async fn a_post_that_may_have_been_applied_is_not_repeated() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/Workspaces/{WS}/Tasks")))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"code": 20500, "message": "Internal"})))
        .mount(&server)
        .await;
    let (client, sleeps) = mock_client(&server);
    let result = client.create_task(&CreateTask::default()).await;
    assert!(matches!(result, Err(Error::Api { status: 500, .. })), "{result:?}");
    assert_eq!(requests(&server).await.len(), 1);
    assert!(sleeps.taken().is_empty());
}

#[tokio::test]
async fn client_errors_are_not_retried_and_parse_the_legacy_body() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "code": 20404, "message": "The requested resource /Workspaces/WS…/Tasks/WT1 was not found",
            "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404,
        })))
        .mount(&server)
        .await;
    let (client, _) = mock_client(&server);
    let error = match client.fetch_task("WT1").await {
        Err(error) => error,
        Ok(task) => panic!("expected a 404, got {task:?}"),
    };
    assert!(error.is_not_found());
    match error {
        Error::Api { code, more_info, .. } => {
            assert_eq!(code, 20404);
            assert_eq!(more_info.as_deref(), Some("https://www.twilio.com/docs/errors/20404"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn rfc9457_problem_bodies_become_api_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "type": "https://www.twilio.com/docs/errors/20001", "title": "Invalid parameter", "status": 400,
            "code": 20001, "detail": "Attributes is not valid JSON", "instance": "/v1/Workspaces/WS/Tasks",
        })))
        .mount(&server)
        .await;
    let (client, _) = mock_client(&server);
    let result = client.create_task(&CreateTask::default()).await;
    match result {
        Err(Error::Api { status, code, message, more_info }) => {
            assert_eq!((status, code), (400, 20001));
            assert_eq!(message, "Invalid parameter: Attributes is not valid JSON");
            assert_eq!(more_info.as_deref(), Some("https://www.twilio.com/docs/errors/20001"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(workspace_json()).set_delay(Duration::from_secs(10)),
        )
        .mount(&server)
        .await;
    let mut config = Config::new(AC, "t").workspace(WS).base_urls(server.uri(), server.uri());
    config.timeout = Duration::from_millis(200);
    config.max_retries = 1;
    let sleeps = RecordedSleeps::default();
    let client = match Client::new(config) {
        Ok(client) => client.with_sleep(sleeps.clone()),
        Err(e) => panic!("{e}"),
    };
    let result = client.fetch_workspace().await;
    assert!(
        matches!(&result, Err(Error::Timeout { after, .. }) if *after == Duration::from_millis(200)),
        "{result:?}"
    );
    // A GET that timed out is retried once (max_retries = 1), then the timeout is reported.
    assert_eq!(sleeps.taken().len(), 1);
}

#[tokio::test]
async fn a_non_json_success_body_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html><body>captive portal</body></html>"))
        .mount(&server)
        .await;
    let (client, _) = mock_client(&server);
    match client.fetch_workspace().await {
        Err(Error::Decode { status, body_start, url, .. }) => {
            assert_eq!(status, 200);
            assert!(body_start.starts_with("<html>"), "{body_start}");
            assert!(url.ends_with(&workspace_path()), "{url}");
        }
        other => panic!("{other:?}"),
    }
    // Truncated JSON is reported the same way.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"sid": "WS0000"#))
        .mount(&server)
        .await;
    let (client, _) = mock_client(&server);
    assert!(matches!(client.fetch_workspace().await, Err(Error::Decode { .. })));
}

fn task_json(sid: &str) -> serde_json::Value {
    json!({"sid": sid, "assignment_status": "pending", "attributes": "{}", "priority": 0})
}

#[tokio::test]
async fn v1_lists_follow_next_page_url_across_pages() -> Result<(), Error> {
    let server = MockServer::start().await;
    let tasks_path = format!("/v1/Workspaces/{WS}/Tasks");
    let next =
        format!("{}{tasks_path}?AssignmentStatus=pending&PageSize=2&Page=1&PageToken=PT1", server.uri());
    Mock::given(method("GET"))
        .and(path(tasks_path.clone()))
        .and(query_param("PageToken", "PT1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "meta": {"key": "tasks", "page": 1, "page_size": 2, "next_page_url": null},
            "tasks": [task_json("WT3")],
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(tasks_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "meta": {"key": "tasks", "page": 0, "page_size": 2, "next_page_url": next},
            "tasks": [task_json("WT1"), task_json("WT2")],
        })))
        .mount(&server)
        .await;
    let (client, _) = mock_client(&server);
    let filter = TaskFilter {
        assignment_status: vec![TaskAssignmentStatus::Pending, TaskAssignmentStatus::Reserved],
        page_size: Some(2),
        ..Default::default()
    };
    let tasks = client.list_tasks(&filter).all().await?;
    let sids: Vec<&str> = tasks.iter().map(|t| t.sid.as_str()).collect();
    assert_eq!(sids, ["WT1", "WT2", "WT3"]);
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 2);
    // Arrays go as repeated keys.
    assert_eq!(sent[0].url.query(), Some("AssignmentStatus=pending&AssignmentStatus=reserved&PageSize=2"));

    // As a stream, items arrive one at a time and the second page is fetched only when needed.
    let server2 = MockServer::start().await;
    one_task_page(&server2, None, format!("{}/v1/never", server2.uri())).await;
    let (client2, _) = mock_client(&server2);
    let mut stream = client2.list_tasks(&TaskFilter::default());
    let first = stream.next().await.transpose()?;
    assert_eq!(first.map(|t| t.sid), Some("WT1".to_owned()));
    assert_eq!(requests(&server2).await.len(), 1);
    Ok(())
}

#[tokio::test]
async fn api_2010_lists_follow_next_page_uri_joined_to_the_api_url() -> Result<(), Error> {
    let server = MockServer::start().await;
    let list_path = format!("/2010-04-01/Accounts/{AC}/Conferences.json");
    Mock::given(method("GET"))
        .and(path(list_path.clone()))
        .and(query_param("Page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "conferences": [{"sid": "CF2", "status": "completed", "reason_conference_ended": "conference-ended-via-api"}],
            "next_page_uri": null, "page": 1,
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(list_path.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "conferences": [{"sid": "CF1", "status": "in-progress", "friendly_name": "WT1"}],
            "next_page_uri": format!("{list_path}?Status=in-progress&PageSize=50&Page=1&PageToken=PACF1"),
            "page": 0,
        })))
        .mount(&server)
        .await;
    let (client, _) = mock_client(&server);
    let filter = twilio::client::conference::ConferenceFilter {
        status: Some(twilio::models::ConferenceStatus::InProgress),
        ..Default::default()
    };
    let conferences = client.list_conferences(&filter).all().await?;
    let sids: Vec<&str> = conferences.iter().map(|c| c.sid.as_str()).collect();
    assert_eq!(sids, ["CF1", "CF2"]);
    assert_eq!(conferences[0].status, Some(twilio::models::ConferenceStatus::InProgress));
    Ok(())
}

#[tokio::test]
async fn an_error_on_the_second_page_ends_the_stream_with_it() {
    let server = MockServer::start().await;
    let tasks_path = format!("/v1/Workspaces/{WS}/Tasks");
    Mock::given(method("GET"))
        .and(path("/v1/gone"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"code": 20404, "message": "gone"})))
        .mount(&server)
        .await;
    one_task_page(&server, Some(tasks_path), format!("{}/v1/gone", server.uri())).await;
    let (client, _) = mock_client(&server);
    let result = client.list_tasks(&TaskFilter::default()).all().await;
    assert!(matches!(result, Err(Error::Api { status: 404, .. })), "{result:?}");
}

#[tokio::test]
async fn a_next_page_link_to_the_same_page_ends_the_stream_instead_of_looping() {
    let server = MockServer::start().await;
    let tasks_path = format!("/v1/Workspaces/{WS}/Tasks");
    one_task_page(&server, Some(tasks_path.clone()), format!("{}{tasks_path}", server.uri())).await;
    let (client, _) = mock_client(&server);
    let result = client.list_tasks(&TaskFilter::default()).all().await;
    assert!(matches!(result, Err(Error::Decode { .. })), "{result:?}");
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn request_wire_format_auth_form_if_match_and_etag() -> Result<(), Error> {
    let server = MockServer::start().await;
    let worker_path = format!("/v1/Workspaces/{WS}/Workers/WK1");
    Mock::given(method("POST"))
        .and(path(worker_path))
        // Basic base64("AC00000000000000000000000000000001:auth-token").
        .and(header("authorization", "Basic QUMwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMTphdXRoLXRva2Vu"))
        .and(header("accept", "application/json"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(header("if-match", "4"))
        .and(body_string("ActivitySid=WA1&Attributes=%7B%22skills%22%3A%5B%22en%22%5D%7D"))
        .respond_with(ResponseTemplate::new(200).insert_header("ETag", "5").set_body_json(
            json!({"sid": "WK1", "activity_sid": "WA1", "available": true, "attributes": null}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = mock_client(&server);
    let update = UpdateWorker {
        activity_sid: Some("WA1".into()),
        attributes: Some(json!({"skills": ["en"]})),
        if_match: Some("4".into()),
        ..Default::default()
    };
    let worker = client.update_worker("WK1", &update).await?;
    assert_eq!(worker.etag.as_deref(), Some("5"));
    assert_eq!(worker.attributes, None);
    assert_eq!(worker.attributes_json().ok(), Some(json!({})));
    Ok(())
}

#[tokio::test]
async fn no_workspace_configured_fails_before_any_request() {
    let server = MockServer::start().await;
    let client = match Client::new(Config::new(AC, "t").base_urls(server.uri(), server.uri())) {
        Ok(client) => client,
        Err(e) => panic!("{e}"),
    };
    assert!(matches!(client.fetch_workspace().await, Err(Error::Config(_))));
    assert!(matches!(client.list_tasks(&TaskFilter::default()).all().await, Err(Error::Config(_))));
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("{e}"),
    };
    let base = format!("http://127.0.0.1:{port}");
    let mut config = Config::new(AC, "t").workspace(WS).base_urls(base.clone(), base);
    config.max_retries = 1;
    let sleeps = RecordedSleeps::default();
    let client = match Client::new(config) {
        Ok(client) => client.with_sleep(sleeps.clone()),
        Err(e) => panic!("{e}"),
    };
    // A connection that never opened is safe to retry even for a POST.
    let result = client.create_task(&CreateTask::default()).await;
    assert!(matches!(&result, Err(Error::Transport { .. })), "{result:?}");
    assert_eq!(sleeps.taken().len(), 1);
    if let Err(error) = result {
        assert!(error.to_string().contains("could not reach"), "{error}");
    }
}
