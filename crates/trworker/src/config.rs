//! Configuration files: `.env` in the working directory, and the data directory's generated credentials and
//! `local.env`.
//!
//! The rule (DESIGN §6): `ACCOUNT_SID` and `AUTH_TOKEN` always name the credentials of the Twilio being talked
//! to. A local engine uses them when they are set; otherwise it generates them once and keeps them in
//! `DIR/credentials.env`, so restarts and the CLI agree. At start a local server writes `DIR/local.env`, which
//! lets the CLI and scripts find it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand::RngCore;

use twilio_server::Credentials;

/// The names of the environment variables trworker reads. The code reads them through these constants (clap's
/// `env = ...` included), so [`SERVER_VARIABLES`] cannot miss one without a test noticing.
pub mod vars {
    /// Account SID of the Twilio being talked to, real or local.
    pub const ACCOUNT_SID: &str = "ACCOUNT_SID";
    /// Its auth token.
    pub const AUTH_TOKEN: &str = "AUTH_TOKEN";
    /// The TaskRouter workspace.
    pub const WORKSPACE_SID: &str = "WORKSPACE_SID";
    /// The workers' sign-in password.
    pub const TOKEN_PASSWORD: &str = "TOKEN_PASSWORD";
    /// The supervisors' sign-in password.
    pub const SUPERVISOR_PASSWORD: &str = "SUPERVISOR_PASSWORD";
    /// `local` or `twilio`.
    pub const MODE: &str = "TRWORKER_MODE";
    /// The port to listen on.
    pub const PORT: &str = "PORT";
    /// The address to bind.
    pub const BIND: &str = "TRWORKER_BIND";
    /// The data directory.
    pub const DATA_DIR: &str = "TRWORKER_DATA_DIR";
    /// The address clients and Twilio use to reach the server.
    pub const PUBLIC_URL: &str = "PUBLIC_URL";
    /// Trust `X-Forwarded-*` headers from a router in front.
    pub const TRUST_PROXY: &str = "TRWORKER_TRUST_PROXY";
    /// Activity after accepting.
    pub const ACCEPT_ACTIVITY: &str = "TRWORKER_ACCEPT_ACTIVITY";
    /// Activity after the conference ends.
    pub const POST_WORK_ACTIVITY: &str = "TRWORKER_POST_WORK_ACTIVITY";
    /// Activity on sign-out and after a page is closed past the grace.
    pub const LEAVE_ACTIVITY: &str = "TRWORKER_LEAVE_ACTIVITY";
    /// How long a closed page is waited for.
    pub const LEAVE_GRACE: &str = "TRWORKER_LEAVE_GRACE_SECONDS";
    /// Wrap-up countdown.
    pub const WRAP_UP_SECONDS: &str = "TRWORKER_WRAP_UP_SECONDS";
    /// TaskRouter base URL.
    pub const TASKROUTER_URL: &str = "TWILIO_TASKROUTER_URL";
    /// API 2010 base URL.
    pub const API_URL: &str = "TWILIO_API_URL";
    /// Event bridge base URL.
    pub const EVENT_BRIDGE_URL: &str = "TWILIO_EVENT_BRIDGE_URL";
    /// `text` or `json` logs.
    pub const LOG_FORMAT: &str = "TRWORKER_LOG_FORMAT";
    /// Log filter.
    pub const RUST_LOG: &str = "RUST_LOG";
    /// Connections served at once.
    pub const MAX_CONNECTIONS: &str = "TRWORKER_MAX_CONNECTIONS";
    /// Time a new connection has to send its first request's head.
    pub const HEADER_TIMEOUT: &str = "TRWORKER_HEADER_TIMEOUT_SECONDS";
    /// Time a keep-alive connection may wait for its next request.
    pub const IDLE_TIMEOUT: &str = "TRWORKER_IDLE_TIMEOUT_SECONDS";
    /// Time a new WebSocket has to say hello.
    pub const WS_HELLO_TIMEOUT: &str = "TRWORKER_WS_HELLO_TIMEOUT_SECONDS";
    /// Largest WebSocket message a client may send.
    pub const WS_MAX_MESSAGE: &str = "TRWORKER_WS_MAX_MESSAGE_BYTES";
    /// Let the seed's action URLs act without a worker token.
    pub const LEGACY_OPEN: &str = "TRWORKER_LEGACY_OPEN";
}

/// An environment variable of the server, with what an operator needs to know to set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    /// Its name.
    pub name: &'static str,
    /// What it does, in one or two sentences (app.json's `description`).
    pub description: &'static str,
    /// Whether twilio mode needs it (Heroku asks for it).
    pub required_for_twilio: bool,
}

/// Every environment variable `trworker serve` reads (besides `NO_COLOR`, the convention that turns colours
/// off on a terminal). `app.json` and the README's configuration reference must list each one; a test checks.
pub const SERVER_VARIABLES: &[Variable] = &[
    Variable {
        name: vars::ACCOUNT_SID,
        description: "Your Twilio Account SID (AC..., from the Twilio Console). With AUTH_TOKEN and WORKSPACE_SID it selects twilio mode.",
        required_for_twilio: true,
    },
    Variable {
        name: vars::AUTH_TOKEN,
        description: "Your Twilio Auth Token (Twilio Console). Signs worker tokens and checks TaskRouter's webhook signatures.",
        required_for_twilio: true,
    },
    Variable {
        name: vars::WORKSPACE_SID,
        description: "The TaskRouter workspace (WS...) whose workers sign in.",
        required_for_twilio: true,
    },
    Variable {
        name: vars::TOKEN_PASSWORD,
        description: "The password workers sign in with; any string you choose.",
        required_for_twilio: true,
    },
    Variable {
        name: vars::SUPERVISOR_PASSWORD,
        description: "The password supervisors sign in with at /supervisor; unset in twilio mode: no supervisor page.",
        required_for_twilio: false,
    },
    Variable {
        name: vars::MODE,
        description: "local (embedded TaskRouter engine) or twilio; by default twilio when ACCOUNT_SID, AUTH_TOKEN and WORKSPACE_SID are set.",
        required_for_twilio: false,
    },
    Variable {
        name: vars::PORT,
        description: "The port to listen on (Heroku sets it; default 8080).",
        required_for_twilio: false,
    },
    Variable {
        name: vars::BIND,
        description: "The address to listen on (default 127.0.0.1; 0.0.0.0 to accept connections from other machines).",
        required_for_twilio: false,
    },
    Variable {
        name: vars::DATA_DIR,
        description: "Directory for the local engine's state and generated credentials (default ./data).",
        required_for_twilio: false,
    },
    Variable {
        name: vars::PUBLIC_URL,
        description: "The https://host clients and Twilio use to reach this app. When set it wins over forwarded headers for webhook signatures.",
        required_for_twilio: false,
    },
    Variable {
        name: vars::TRUST_PROXY,
        description: "true behind a router (Heroku, a load balancer): client addresses come from X-Forwarded-For.",
        required_for_twilio: false,
    },
    Variable {
        name: vars::ACCEPT_ACTIVITY,
        description: "Activity a worker is moved to after accepting a call (default Unavailable).",
        required_for_twilio: false,
    },
    Variable {
        name: vars::POST_WORK_ACTIVITY,
        description: "Activity a worker is moved to when the conference ends (default Offline).",
        required_for_twilio: false,
    },
    Variable {
        name: vars::LEAVE_ACTIVITY,
        description: "Activity a worker is moved to on sign-out, and when its page has been closed past the grace (default Offline).",
        required_for_twilio: false,
    },
    Variable {
        name: vars::LEAVE_GRACE,
        description: "Seconds a worker's last page may be closed before an available worker is moved to the leave activity (default 120; 0: never).",
        required_for_twilio: false,
    },
    Variable {
        name: vars::WRAP_UP_SECONDS,
        description: "Seconds of wrap-up after a call (default 60; Extend adds a minute, up to 10 minutes); at zero the server completes the task. 0: no wrap-up, the task is completed when the call ends.",
        required_for_twilio: false,
    },
    Variable {
        name: vars::TASKROUTER_URL,
        description: "TaskRouter base URL override (default Twilio's), e.g. a separate trworker engine.",
        required_for_twilio: false,
    },
    Variable {
        name: vars::API_URL,
        description: "API 2010 (Conferences) base URL override (default Twilio's).",
        required_for_twilio: false,
    },
    Variable {
        name: vars::EVENT_BRIDGE_URL,
        description: "Event bridge base URL for workers' event channels (default Twilio's, or the TaskRouter URL when that is set, as a trworker engine serves both); off: no channels, events by the webhook only.",
        required_for_twilio: false,
    },
    Variable {
        name: vars::MAX_CONNECTIONS,
        description: "Connections served at once, WebSockets included (default 16384, lowered to fit the open-files limit); one over it gets 503.",
        required_for_twilio: false,
    },
    Variable {
        name: vars::HEADER_TIMEOUT,
        description: "Seconds a new connection has to send its first request's headers before it is closed (default 10).",
        required_for_twilio: false,
    },
    Variable {
        name: vars::IDLE_TIMEOUT,
        description: "Seconds a keep-alive connection may wait for its next request before it is closed (default 60).",
        required_for_twilio: false,
    },
    Variable {
        name: vars::WS_HELLO_TIMEOUT,
        description: "Seconds a new worker WebSocket has to send its hello with a token before it is closed (default 10).",
        required_for_twilio: false,
    },
    Variable {
        name: vars::WS_MAX_MESSAGE,
        description: "Largest message in bytes a client may send on the worker WebSocket (default 16384).",
        required_for_twilio: false,
    },
    Variable {
        name: vars::LEGACY_OPEN,
        description: "true lets the original app's conferenceEndFn.php and taskReservationTaskFix.php act without a worker token, as the original did (trusted networks only; logs a warning). Default false.",
        required_for_twilio: false,
    },
    Variable {
        name: vars::LOG_FORMAT,
        description: "text (default) or json: one JSON object per log line.",
        required_for_twilio: false,
    },
    Variable {
        name: vars::RUST_LOG,
        description: "Log level filter, e.g. info (default) or debug or trworker=debug.",
        required_for_twilio: false,
    },
];

/// Why a configuration file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A line is not `KEY=value`.
    #[error("{path}, line {line}: expected KEY=value")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
    },
}

/// Parses `KEY=value` lines: blank lines and `#` comments are skipped, an optional `export ` prefix is
/// allowed, and a value may be wrapped in single or double quotes.
pub fn parse_env(path: &Path, text: &str) -> Result<BTreeMap<String, String>, Error> {
    let mut values = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::Syntax { path: path.to_owned(), line: index + 1 });
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::Syntax { path: path.to_owned(), line: index + 1 });
        }
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        values.insert(key.to_owned(), value.to_owned());
    }
    Ok(values)
}

/// Reads a `KEY=value` file; a missing file is an empty map.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_env(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(source) => Err(Error::Io { path: path.to_owned(), source }),
    }
}

/// Loads `.env` from the working directory into the process environment, never overriding a variable that
/// is already set (the environment wins, as with every dotenv tool). Returns the path if a file was read.
///
/// Call this before any thread is started: it modifies the process environment.
pub fn load_dotenv(path: &Path) -> Result<Option<PathBuf>, Error> {
    if !path.exists() {
        return Ok(None);
    }
    for (key, value) in read_env_file(path)? {
        if std::env::var_os(&key).is_none() {
            // Called from `main` before the runtime or any other thread exists, so nothing reads the
            // environment concurrently.
            std::env::set_var(key, value);
        }
    }
    Ok(Some(path.to_owned()))
}

/// Writes `KEY=value` lines atomically (temporary file, then rename) and readable by the owner only (`0600`
/// on Unix), since the file holds an auth token; a missing directory is made the owner's only too (`0700`,
/// as the engine makes its data directory).
pub fn write_env_file(path: &Path, entries: &[(&str, &str)]) -> Result<(), Error> {
    let io = |source| Error::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        engine::store::create_data_dir(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    // The mode above applies only to a file it creates: a temporary file left by an interrupted write of an
    // older version keeps its own, and the rename would carry it over.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    let mut text = String::from("# Written by trworker. Source it, or let the trworker CLI find it.\n");
    for (key, value) in entries {
        text.push_str(key);
        text.push('=');
        text.push_str(value);
        text.push('\n');
    }
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Credentials for a local engine: the given values where set, else those kept in `DIR/credentials.env`, else
/// newly generated ones (and kept there for next time).
pub fn local_credentials(
    data_dir: &Path,
    account_sid: Option<String>,
    auth_token: Option<String>,
) -> Result<Credentials, Error> {
    let path = data_dir.join("credentials.env");
    let kept = read_env_file(&path)?;
    let account_sid = account_sid
        .or_else(|| kept.get("ACCOUNT_SID").cloned())
        .unwrap_or_else(|| format!("AC{}", random_hex()));
    let auth_token = auth_token.or_else(|| kept.get("AUTH_TOKEN").cloned()).unwrap_or_else(random_hex);
    let credentials = Credentials { account_sid, auth_token };
    if kept.get("ACCOUNT_SID") != Some(&credentials.account_sid)
        || kept.get("AUTH_TOKEN") != Some(&credentials.auth_token)
    {
        write_env_file(
            &path,
            &[("ACCOUNT_SID", &credentials.account_sid), ("AUTH_TOKEN", &credentials.auth_token)],
        )?;
    }
    Ok(credentials)
}

/// The workers' sign-in password of a local server when `TOKEN_PASSWORD` is not set: generated once (four
/// short words' worth of randomness, easy to type) and kept in `DIR/token_password.env`.
pub fn local_token_password(data_dir: &Path) -> Result<String, Error> {
    generated_password(&data_dir.join("token_password.env"), vars::TOKEN_PASSWORD)
}

/// The supervisors' sign-in password of a local server when `SUPERVISOR_PASSWORD` is not set: generated
/// once, as the workers', and kept in `DIR/supervisor_password.env`.
pub fn local_supervisor_password(data_dir: &Path) -> Result<String, Error> {
    generated_password(&data_dir.join("supervisor_password.env"), vars::SUPERVISOR_PASSWORD)
}

/// The password `name` kept in `path`, generated and written there (owner-only) the first time.
fn generated_password(path: &Path, name: &str) -> Result<String, Error> {
    if let Some(password) = read_env_file(path)?.remove(name).filter(|p| !p.is_empty()) {
        return Ok(password);
    }
    let hex = random_hex();
    let password = format!("{}-{}-{}", &hex[0..4], &hex[4..8], &hex[8..12]);
    write_env_file(path, &[(name, &password)])?;
    Ok(password)
}

/// 32 lowercase hex digits from the operating system's random source.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("trworker-config-{name}-{}", random_hex()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn parses_comments_quotes_and_export() {
        let text = "# comment\n\nexport A=1\nB = \"two words\"\nC='x=y'\nD=\n";
        let values = parse_env(Path::new(".env"), text).unwrap();
        assert_eq!(values["A"], "1");
        assert_eq!(values["B"], "two words");
        assert_eq!(values["C"], "x=y");
        assert_eq!(values["D"], "");
    }

    #[test]
    fn names_the_line_that_is_wrong() {
        let err = parse_env(Path::new("x.env"), "A=1\njust words\n").unwrap_err();
        assert_eq!(err.to_string(), "x.env, line 2: expected KEY=value");
        assert!(parse_env(Path::new("x.env"), "BAD KEY=1").is_err());
    }

    #[test]
    fn generated_credentials_are_kept_and_given_ones_win() {
        let dir = temp_dir("creds");
        let first = local_credentials(&dir, None, None).unwrap();
        assert!(first.account_sid.starts_with("AC") && first.account_sid.len() == 34);
        assert_eq!(first.auth_token.len(), 32);
        let again = local_credentials(&dir, None, None).unwrap();
        assert_eq!((&first.account_sid, &first.auth_token), (&again.account_sid, &again.auth_token));
        let given = local_credentials(&dir, None, Some("secret".into())).unwrap();
        assert_eq!(given.account_sid, first.account_sid);
        assert_eq!(given.auth_token, "secret");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_local_password_is_generated_once() {
        let dir = temp_dir("password");
        let first = local_token_password(&dir).unwrap();
        assert_eq!(first.len(), 14);
        assert_eq!(local_token_password(&dir).unwrap(), first);
        let supervisor = local_supervisor_password(&dir).unwrap();
        assert_ne!(supervisor, first, "the supervisors' password is another one");
        assert_eq!(local_supervisor_password(&dir).unwrap(), supervisor);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_new_data_dir_is_private_and_a_readable_leftover_does_not_make_a_readable_file() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let root = temp_dir("private");
        let dir = root.join("data");
        local_token_password(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("token_password.env")), 0o600);
        // An interrupted write of an older version left its temporary file readable by everyone.
        let leftover = dir.join("credentials.tmp");
        std::fs::write(&leftover, "").unwrap();
        std::fs::set_permissions(&leftover, std::fs::Permissions::from_mode(0o644)).unwrap();
        local_credentials(&dir, None, None).unwrap();
        assert_eq!(mode(&dir.join("credentials.env")), 0o600);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn env_files_are_private_and_round_trip() {
        let dir = temp_dir("write");
        let path = dir.join("local.env");
        write_env_file(&path, &[("A", "1"), ("B", "two")]).unwrap();
        let values = read_env_file(&path).unwrap();
        assert_eq!(values["A"], "1");
        assert_eq!(values["B"], "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
