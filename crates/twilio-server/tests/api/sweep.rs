//! Every operation of the two specs is routed (never the fallback 404 or a 405) and no request, well-formed
//! or garbage, gets a 5xx.

use super::helpers::*;

/// (method, path) of every operation in `shared/specs/` (TaskRouter v1 and the Conference subset of 2010).
pub const OPERATIONS: [(&str, &str); 73] = [
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Activities/{Sid}"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/Activities/{Sid}"),
    ("DELETE", "/v1/Workspaces/{WorkspaceSid}/Activities/{Sid}"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Activities"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/Activities"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Events/{Sid}"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Events"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}"),
    ("DELETE", "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Tasks"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/Tasks"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/TaskChannels/{Sid}"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/TaskChannels/{Sid}"),
    ("DELETE", "/v1/Workspaces/{WorkspaceSid}/TaskChannels/{Sid}"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/TaskChannels"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/TaskChannels"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{Sid}"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{Sid}"),
    ("DELETE", "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{Sid}"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/TaskQueues"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/TaskQueues"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/TaskQueues/RealTimeStatistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/CumulativeStatistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/RealTimeStatistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/Statistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/TaskQueues/Statistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations/{Sid}"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations/{Sid}"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workers"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/Workers"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workers/{Sid}"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/Workers/{Sid}"),
    ("DELETE", "/v1/Workspaces/{WorkspaceSid}/Workers/{Sid}"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Channels"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Channels/{Sid}"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Channels/{Sid}"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Statistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations/{Sid}"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations/{Sid}"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workers/Statistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workers/CumulativeStatistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workers/RealTimeStatistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workflows/{Sid}"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/Workflows/{Sid}"),
    ("DELETE", "/v1/Workspaces/{WorkspaceSid}/Workflows/{Sid}"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workflows"),
    ("POST", "/v1/Workspaces/{WorkspaceSid}/Workflows"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workflows/{WorkflowSid}/CumulativeStatistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workflows/{WorkflowSid}/RealTimeStatistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Workflows/{WorkflowSid}/Statistics"),
    ("GET", "/v1/Workspaces/{Sid}"),
    ("POST", "/v1/Workspaces/{Sid}"),
    ("DELETE", "/v1/Workspaces/{Sid}"),
    ("GET", "/v1/Workspaces"),
    ("POST", "/v1/Workspaces"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/CumulativeStatistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/RealTimeStatistics"),
    ("GET", "/v1/Workspaces/{WorkspaceSid}/Statistics"),
    ("GET", "/2010-04-01/Accounts/{AccountSid}/Conferences/{Sid}.json"),
    ("POST", "/2010-04-01/Accounts/{AccountSid}/Conferences/{Sid}.json"),
    ("GET", "/2010-04-01/Accounts/{AccountSid}/Conferences.json"),
    ("GET", "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Recordings.json"),
    ("POST", "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Recordings/{Sid}.json"),
    ("GET", "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Recordings/{Sid}.json"),
    ("DELETE", "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Recordings/{Sid}.json"),
    ("GET", "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json"),
    ("POST", "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json"),
    ("DELETE", "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json"),
    ("POST", "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants.json"),
    ("GET", "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants.json"),
];

fn prefix_for(previous: &str) -> &'static str {
    match previous {
        "Activities" => "WA",
        "Events" => "EV",
        "Tasks" => "WT",
        "TaskChannels" => "TC",
        "TaskQueues" => "WQ",
        "Reservations" => "WR",
        "Workers" => "WK",
        "Channels" => "WC",
        "Workflows" => "WW",
        "Conferences" => "CF",
        "Recordings" => "RE",
        "Participants" => "CA",
        _ => "ZZ",
    }
}

fn fill(template: &str, ws: &str) -> String {
    fill_with(template, &|name, previous| match name {
        "WorkspaceSid" => ws.to_owned(),
        "AccountSid" => ACCOUNT.to_owned(),
        "TaskSid" => format!("WT{:032x}", 99),
        "WorkerSid" => format!("WK{:032x}", 99),
        "TaskQueueSid" => format!("WQ{:032x}", 99),
        "WorkflowSid" => format!("WW{:032x}", 99),
        "ConferenceSid" => format!("CF{:032x}", 99),
        _ => format!("{}{:032x}", prefix_for(previous), 99),
    })
}

/// Fills `{Name}` placeholders with `value(name, previous_segment)`.
pub fn fill_with(template: &str, value: &dyn Fn(&str, &str) -> String) -> String {
    let mut out = Vec::new();
    let mut previous = "";
    for segment in template.split('/') {
        let filled = if let Some(start) = segment.find('{') {
            let end = segment.find('}').unwrap();
            let name = &segment[start + 1..end];
            let value = value(name, previous);
            format!("{}{value}{}", &segment[..start], &segment[end + 1..])
        } else {
            segment.to_owned()
        };
        previous = segment;
        out.push(filled);
    }
    out.join("/")
}

#[tokio::test]
async fn every_spec_operation_is_routed_and_nothing_is_a_5xx() {
    let app = spawn_app().await;
    let ws = app.workspace(&[]).await;
    sweep(&app, &ws).await;
}

/// Sends `method path` without credentials.
async fn anonymous(app: &TestApp, method: &str, path: &str) -> (u16, serde_json::Value) {
    let request = match method {
        "GET" => app.client.get(app.url(path)),
        "POST" => app.client.post(app.url(path)),
        _ => app.client.delete(app.url(path)),
    };
    read(request.send().await.unwrap()).await
}

/// Sends every spec operation, with good and garbage bodies, against workspace `ws`.
///
/// "Routed" cannot be read from a 404's message: the router's fallback and the engine word a missing resource
/// the same way, as Twilio does (`The requested resource /Workspaces/WS…/Activities/WA… was not found`), and
/// the sweep's SIDs name nothing. It is read from authentication instead: Basic auth is a `route_layer`, so
/// it runs only for a request that matched a route, while the fallback answers 404 to anyone. Each operation
/// is therefore sent once without credentials and must get 401/20003; a control request to an unrouted path
/// shows that the probe can tell the two apart. With credentials, no operation may get a 405 (the path is
/// routed but not for that method) or a 5xx.
pub async fn sweep(app: &TestApp, ws: &str) {
    let (status, body) = anonymous(app, "GET", &format!("/v1/Workspaces/{ws}/Nope")).await;
    assert_eq!(status, 404, "an unrouted path reaches the fallback without credentials: {body}");
    assert_twilio_error(&body, 404, 20404);

    for (method, template) in OPERATIONS {
        let path = fill(template, ws);
        let (status, body) = anonymous(app, method, &path).await;
        assert_eq!(status, 401, "{method} {path} is not routed: {body}");
        assert_twilio_error(&body, 401, 20003);
        for body in ["", "Garbage=%zz", "FriendlyName=x&Unknown=1", "Attributes=%7Bbad"] {
            let request = match method {
                "GET" => app.client.get(app.url(&format!("{path}?{body}"))),
                "POST" => app
                    .client
                    .post(app.url(&path))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body.to_owned()),
                _ => app.client.delete(app.url(&path)),
            };
            let (status, response) =
                read(request.basic_auth(ACCOUNT, Some(TOKEN)).send().await.unwrap()).await;
            assert!(status < 500, "{method} {path} [{body}] -> {status} {response}");
            assert_ne!(status, 405, "{method} {path} is not routed for {method}: {response}");
        }
    }
}
