//! The browser: a `chromedriver` child process on a free port and a fantoccini session with headless
//! Chromium, plus the page's vocabulary (sign in, press a button, wait for a test ID).
//!
//! Waiting is always for a condition on the page (an element matching an XPath), with a generous limit:
//! how fast the page gets there does not matter, only that it does.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Map, Value};

use crate::support::TempDir;

/// How long the page may take to reach a state before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

const SKIP: &str = "skipping: chromedriver not found (apt-get install chromium chromium-driver)";

/// `CHROMEDRIVER` or `/usr/bin/chromedriver`, if it exists. Without it a test prints why it skips and
/// returns, unless `E2E_REQUIRED=1`, when it fails.
pub fn chromedriver_or_skip() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMEDRIVER")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    if path.is_file() {
        return Some(path);
    }
    let required = std::env::var("E2E_REQUIRED").is_ok_and(|v| v == "1");
    assert!(!required, "E2E_REQUIRED=1 but chromedriver is missing at {}: {SKIP}", path.display());
    println!("{SKIP}");
    None
}

/// A running chromedriver and one browser session; both end on drop (or [`Browser::close`]).
pub struct Browser {
    pub client: Client,
    /// `None` once ended.
    driver: Option<Child>,
    /// Chromium's profile, removed on drop (after the driver's end).
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver at `driver_path` and opens headless Chromium (`CHROME_BIN` or `/usr/bin/chromium`).
    pub async fn launch(driver_path: &PathBuf) -> Browser {
        let port = free_port();
        // chromedriver leads a process group of its own, which the browser it starts joins: ending the
        // group on drop leaves no Chromium behind when a test fails half-way.
        let mut driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_path.display()));
        if let Err(message) = wait_for_port(port).await {
            end_group(&mut driver);
            panic!("chromedriver did not start: {message}");
        }
        let profile = TempDir::new("e2e-profile");
        let binary = std::env::var("CHROME_BIN")
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "/usr/bin/chromium".to_owned());
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-breakpad".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), json!({ "args": args, "binary": binary }));
        let connected = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match connected {
            Ok(client) => client,
            Err(e) => {
                end_group(&mut driver);
                panic!("cannot open a Chromium session through chromedriver ({binary}): {e}");
            }
        };
        Browser { client, driver: Some(driver), _profile: profile }
    }

    /// Ends the session, then chromedriver.
    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        self.kill_driver();
    }

    fn kill_driver(&mut self) {
        if let Some(mut driver) = self.driver.take() {
            end_group(&mut driver);
        }
    }

    /// Opens `url` in the current window.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits until an element matches `xpath`, and returns it.
    pub async fn wait_xpath(&self, what: &str, xpath: &str) -> Element {
        match self.client.wait().at_most(PATIENCE).for_element(Locator::XPath(xpath)).await {
            Ok(element) => element,
            Err(e) => panic!("the page never showed {what} ({xpath}): {e}\n{}", self.dump().await),
        }
    }

    /// Waits until nothing matches `xpath`.
    pub async fn wait_gone(&self, what: &str, xpath: &str) {
        let result = self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(&format!("/html[not({xpath})]")))
            .await;
        if let Err(e) = result {
            panic!("the page kept showing {what} ({xpath}): {e}\n{}", self.dump().await);
        }
    }

    /// Waits for the element with `data-testid` `id` whose text contains `text`.
    pub async fn wait_text(&self, id: &str, text: &str) -> Element {
        let xpath = format!("//*[@data-testid='{id}'][contains(normalize-space(.), {})]", literal(text));
        self.wait_xpath(&format!("{id} with {text:?}"), &xpath).await
    }

    /// Waits for the worker's activity to read exactly `name`.
    pub async fn wait_activity(&self, name: &str) {
        let xpath = format!(
            "//*[@data-testid='activity']//*[contains(@class,'activity-name')][normalize-space(.)={}]",
            literal(name)
        );
        self.wait_xpath(&format!("the activity {name}"), &xpath).await;
    }

    /// Waits for an enabled button labelled `label` (under `scope`, an XPath, or anywhere) and clicks it.
    pub async fn press_in(&self, scope: &str, label: &str) {
        let xpath = format!("{scope}//button[normalize-space(.)={}][not(@disabled)]", literal(label));
        // A card rebuilt by a new state between finding and clicking leaves a stale element: find it again.
        for _ in 0..3 {
            let button = self.wait_xpath(&format!("the button {label:?}"), &xpath).await;
            match button.click().await {
                Ok(_) => return,
                Err(e) if e.to_string().contains("stale element") => continue,
                Err(e) => panic!("click {label:?}: {e}"),
            }
        }
        panic!("click {label:?}: the button kept being replaced");
    }

    /// Opens the Details (the attributes behind the call's summary) of the card matching `card`.
    pub async fn open_details(&self, card: &str) {
        let summary = self.wait_xpath("Details", &format!("{card}//summary[.='Details']")).await;
        summary.click().await.expect("open Details");
    }

    /// Clicks the visible, enabled button labelled `label`.
    pub async fn press(&self, label: &str) {
        self.press_in("", label).await;
    }

    /// Types `text` into the field matching `xpath` (after emptying it), as a worker would.
    pub async fn fill(&self, what: &str, xpath: &str, text: &str) {
        let field = self.wait_xpath(what, xpath).await;
        field.clear().await.unwrap_or_else(|e| panic!("clear {what}: {e}"));
        field.send_keys(text).await.unwrap_or_else(|e| panic!("type into {what}: {e}"));
    }

    /// Picks the option whose value is `value` in the select matching `xpath`.
    pub async fn choose(&self, what: &str, xpath: &str, value: &str) {
        let select = self.wait_xpath(what, xpath).await;
        select.select_by_value(value).await.unwrap_or_else(|e| panic!("choose {value:?} in {what}: {e}"));
    }

    /// Fills the sign-in form and submits it.
    pub async fn sign_in(&self, identity: &str, password: &str) {
        let field = self.wait_xpath("the Identity field", "//input[@id='identity']").await;
        field.clear().await.expect("clear identity");
        field.send_keys(identity).await.expect("type identity");
        let field = self.client.find(Locator::Css("#password")).await.expect("the Password field");
        field.clear().await.expect("clear password");
        field.send_keys(password).await.expect("type password");
        self.press("Sign in").await;
    }

    /// Signs in and waits until the live connection has delivered the worker's state.
    pub async fn sign_in_ok(&self, identity: &str, password: &str) {
        self.sign_in(identity, password).await;
        self.wait_connected().await;
        self.wait_xpath("the worker's activity", "//*[@id='activity-name'][normalize-space(.)!='']").await;
    }

    /// Waits for the connection indicator to say connected.
    pub async fn wait_connected(&self) {
        self.wait_xpath("a live connection", "//*[@data-testid='connection'][@data-state='connected']").await;
    }

    /// The text of the element with `data-testid` `id` (the first one).
    pub async fn text_of(&self, id: &str) -> String {
        let element = self.wait_xpath(id, &format!("//*[@data-testid='{id}']")).await;
        element.text().await.unwrap_or_else(|e| panic!("text of {id}: {e}"))
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.map(|all| all.len()).unwrap_or(0)
    }

    /// Runs `script` in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap_or_else(|e| panic!("script {script:?}: {e}"))
    }

    /// The page's visible text and the log, for failure messages.
    async fn dump(&self) -> String {
        match self.client.execute("return document.body ? document.body.innerText : ''", Vec::new()).await {
            Ok(Value::String(text)) => format!("--- page text ---\n{text}\n-----------------"),
            Ok(other) => format!("(page text: {other})"),
            Err(e) => format!("(page text unavailable: {e})"),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill_driver();
    }
}

/// `text` as an XPath string literal (XPath 1.0 has no escapes: `concat` when both quote kinds occur).
pub fn literal(text: &str) -> String {
    if !text.contains('\'') {
        return format!("'{text}'");
    }
    if !text.contains('"') {
        return format!("\"{text}\"");
    }
    let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
    format!("concat({})", parts.join(", \"'\", "))
}

/// Kills the process group `driver` leads (chromedriver and the browser it started), then reaps it.
/// Only before the leader is reaped is its ID certainly still this group's.
fn end_group(driver: &mut Child) {
    let group = format!("-{}", driver.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !killed {
        let _ = driver.kill();
    }
    let _ = driver.wait();
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe socket");
    listener.local_addr().expect("probe address").port()
}

/// Waits until something accepts connections on `port` (chromedriver is up).
async fn wait_for_port(port: u16) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
