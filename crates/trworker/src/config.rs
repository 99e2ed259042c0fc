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

use crate::api::Credentials;

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

/// Writes `KEY=value` lines atomically (temporary file, then rename) and readable by the owner only, since
/// the file holds an auth token.
pub fn write_env_file(path: &Path, entries: &[(&str, &str)]) -> Result<(), Error> {
    let io = |source| Error::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
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
    let path = data_dir.join("token_password.env");
    if let Some(password) = read_env_file(&path)?.remove("TOKEN_PASSWORD").filter(|p| !p.is_empty()) {
        return Ok(password);
    }
    let hex = random_hex();
    let password = format!("{}-{}-{}", &hex[0..4], &hex[4..8], &hex[8..12]);
    write_env_file(&path, &[("TOKEN_PASSWORD", &password)])?;
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
        std::fs::remove_dir_all(dir).unwrap();
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
