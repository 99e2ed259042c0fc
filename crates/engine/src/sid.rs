//! Twilio-shaped resource identifiers and their injected generator.
//!
//! A SID is a two-letter prefix naming the resource type plus 32 lowercase hex digits. [`Sid`] stores the
//! prefix and the 128-bit number as two `u64` halves, so it is `Copy`, hashes fast and costs 24 bytes
//! instead of a heap string: the routing indexes hold millions of them. (A `u128` field would make it 32:
//! `u128` is 16-byte aligned on x86_64.)

use std::fmt;
use std::str::FromStr;

/// The resource types the engine mints SIDs for, by their Twilio prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Prefix {
    /// `AC` account.
    Account,
    /// `WS` workspace.
    Workspace,
    /// `WA` activity.
    Activity,
    /// `TC` task channel.
    TaskChannel,
    /// `WK` worker.
    Worker,
    /// `WC` worker channel.
    WorkerChannel,
    /// `WQ` task queue.
    TaskQueue,
    /// `WW` workflow.
    Workflow,
    /// `WT` task.
    Task,
    /// `WR` reservation.
    Reservation,
    /// `EV` event.
    Event,
    /// `CF` conference.
    Conference,
    /// `CA` call (participant legs).
    Call,
    /// `SK` API key (API 2010 `Keys`).
    ApiKey,
    /// `TT` task transfer (the worker SDK's `Task.transfer`).
    Transfer,
}

impl Prefix {
    /// Every prefix, for parsing and tests. The stored binary forms name a prefix by its index here
    /// (`codec`): new prefixes go at the end.
    pub const ALL: [Prefix; 15] = [
        Prefix::Account,
        Prefix::Workspace,
        Prefix::Activity,
        Prefix::TaskChannel,
        Prefix::Worker,
        Prefix::WorkerChannel,
        Prefix::TaskQueue,
        Prefix::Workflow,
        Prefix::Task,
        Prefix::Reservation,
        Prefix::Event,
        Prefix::Conference,
        Prefix::Call,
        Prefix::ApiKey,
        Prefix::Transfer,
    ];

    /// The two letters Twilio uses for this resource type.
    pub const fn as_str(self) -> &'static str {
        match self {
            Prefix::Account => "AC",
            Prefix::Workspace => "WS",
            Prefix::Activity => "WA",
            Prefix::TaskChannel => "TC",
            Prefix::Worker => "WK",
            Prefix::WorkerChannel => "WC",
            Prefix::TaskQueue => "WQ",
            Prefix::Workflow => "WW",
            Prefix::Task => "WT",
            Prefix::Reservation => "WR",
            Prefix::Event => "EV",
            Prefix::Conference => "CF",
            Prefix::Call => "CA",
            Prefix::ApiKey => "SK",
            Prefix::Transfer => "TT",
        }
    }

    fn from_letters(letters: &str) -> Option<Prefix> {
        Prefix::ALL.into_iter().find(|p| p.as_str() == letters)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Twilio resource identifier such as `WK0123456789abcdef0123456789abcdef`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    prefix: Prefix,
    /// The number's high and low 64 bits; field order keeps the derived `Ord` that of the `u128`.
    hi: u64,
    lo: u64,
}

/// Why a string is not a SID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SidError {
    /// Not 34 characters long.
    #[error("'{0}' is not a valid SID: a SID is 2 letters followed by 32 hexadecimal digits")]
    Length(String),
    /// The two letters are not a resource type the engine knows.
    #[error("'{0}' is not a valid SID: unknown prefix")]
    UnknownPrefix(String),
    /// The prefix is valid but names another resource type.
    #[error("'{found}' is not a valid {expected} SID: it should start with {expected}")]
    WrongPrefix {
        /// The string that was given.
        found: String,
        /// The prefix that was required.
        expected: Prefix,
    },
    /// The 32 characters after the prefix are not all hexadecimal digits.
    #[error("'{0}' is not a valid SID: the 32 characters after the prefix must be hexadecimal digits")]
    Digits(String),
}

impl Sid {
    /// Builds a SID from its parts.
    pub const fn new(prefix: Prefix, number: u128) -> Sid {
        Sid { prefix, hi: (number >> 64) as u64, lo: number as u64 }
    }

    /// The resource type.
    pub const fn prefix(self) -> Prefix {
        self.prefix
    }

    /// The 128-bit number after the prefix.
    pub const fn number(self) -> u128 {
        ((self.hi as u128) << 64) | self.lo as u128
    }

    /// Parses any SID with a known prefix. Accepts upper- or lowercase hex digits, as Twilio does.
    pub fn parse(s: &str) -> Result<Sid, SidError> {
        if s.len() != 34 || !s.is_ascii() {
            return Err(SidError::Length(s.to_owned()));
        }
        let (letters, digits) = s.split_at(2);
        let prefix = Prefix::from_letters(letters).ok_or_else(|| SidError::UnknownPrefix(s.to_owned()))?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SidError::Digits(s.to_owned()));
        }
        let number = u128::from_str_radix(digits, 16).map_err(|_| SidError::Digits(s.to_owned()))?;
        Ok(Sid::new(prefix, number))
    }

    /// Parses a SID that must have the given prefix.
    pub fn parse_as(s: &str, expected: Prefix) -> Result<Sid, SidError> {
        let sid = Sid::parse(s)?;
        if sid.prefix != expected {
            return Err(SidError::WrongPrefix { found: s.to_owned(), expected });
        }
        Ok(sid)
    }
}

impl Sid {
    /// The 34 ASCII bytes of the text form (what `Display` writes). Hand-rolled because `{:032x}` on a
    /// `u128` writes one char at a time, and SIDs are formatted for every event field and every stored record.
    pub fn text(self) -> [u8; 34] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'0'; 34];
        out[..2].copy_from_slice(self.prefix.as_str().as_bytes());
        let mut n = self.number();
        for slot in out[2..].iter_mut().rev() {
            *slot = HEX[(n & 0xf) as usize];
            n >>= 4;
        }
        out
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        // Always ASCII: two prefix letters and hex digits.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Sid {
    type Err = SidError;
    fn from_str(s: &str) -> Result<Sid, SidError> {
        Sid::parse(s)
    }
}

impl serde::Serialize for Sid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Written as a plain string rather than through `Display` (`collect_str`), which costs a formatter
        // and an adapter per SID; a task's JSON carries about ten.
        let text = self.text();
        serializer.serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> serde::Deserialize<'de> for Sid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Sid, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Sid::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where new SIDs come from. Injected so that tests and snapshots are deterministic.
pub trait SidGen: Send {
    /// A SID never returned before by this generator.
    fn next(&mut self, prefix: Prefix) -> Sid;
}

/// Random SIDs, as Twilio mints them. Uses a xorshift generator seeded from the OS: SIDs must be unique, not
/// secret, and a fast generator keeps minting off the routing hot path.
pub struct RandomSids {
    state: u128,
}

impl RandomSids {
    /// Seeds from the system clock and the address of a stack value, which is enough entropy for uniqueness.
    pub fn new() -> RandomSids {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let local = 0u8;
        let addr = &local as *const u8 as usize as u128;
        let pid = u128::from(std::process::id());
        RandomSids::with_seed(nanos ^ (addr << 64) ^ (pid << 96))
    }

    /// A generator with a fixed seed.
    pub fn with_seed(seed: u128) -> RandomSids {
        RandomSids { state: seed | 1 }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift128+ style mixing on the two halves; period far beyond any engine's lifetime.
        let mut s1 = self.state as u64;
        let s0 = (self.state >> 64) as u64;
        s1 ^= s1 << 23;
        let new_low = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
        self.state = (u128::from(s0)) | (u128::from(new_low) << 64);
        new_low.wrapping_add(s0)
    }
}

impl Default for RandomSids {
    fn default() -> Self {
        RandomSids::new()
    }
}

impl SidGen for RandomSids {
    fn next(&mut self, prefix: Prefix) -> Sid {
        let hi = u128::from(self.next_u64());
        let lo = u128::from(self.next_u64());
        Sid::new(prefix, (hi << 64) | lo)
    }
}

/// Sequential SIDs (`WK000…001`, `WK000…002`, …) for tests and reproducible snapshots.
#[derive(Debug, Default, Clone)]
pub struct SequentialSids {
    next: u128,
}

impl SequentialSids {
    /// Starts at 1.
    pub fn new() -> SequentialSids {
        SequentialSids { next: 1 }
    }
}

impl SidGen for SequentialSids {
    fn next(&mut self, prefix: Prefix) -> Sid {
        let sid = Sid::new(prefix, self.next.max(1));
        self.next = self.next.max(1) + 1;
        sid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_24_bytes_and_orders_like_the_number() {
        assert_eq!(std::mem::size_of::<Sid>(), 24);
        assert_eq!(std::mem::size_of::<Option<Sid>>(), 24);
        let big = u128::MAX - 5;
        assert_eq!(Sid::new(Prefix::Task, big).number(), big);
        assert!(Sid::new(Prefix::Task, 1 << 64) > Sid::new(Prefix::Task, u128::from(u64::MAX)));
        assert!(Sid::new(Prefix::Task, 2) < Sid::new(Prefix::Task, 3));
        assert!(Sid::new(Prefix::Task, 0) > Sid::new(Prefix::Worker, big));
    }

    #[test]
    fn round_trips_through_text() {
        let sid = Sid::new(Prefix::Worker, 0xabc);
        let text = sid.to_string();
        assert_eq!(text, "WK00000000000000000000000000000abc");
        assert_eq!(Sid::parse(&text), Ok(sid));
        assert_eq!(Sid::parse("WK00000000000000000000000000000ABC"), Ok(sid));
    }

    #[test]
    fn names_what_is_wrong() {
        assert!(matches!(Sid::parse("WK123"), Err(SidError::Length(_))));
        assert!(matches!(Sid::parse("ZZ00000000000000000000000000000abc"), Err(SidError::UnknownPrefix(_))));
        assert!(matches!(Sid::parse("WK0000000000000000000000000000zabc"), Err(SidError::Digits(_))));
        assert!(matches!(Sid::parse("WK+0000000000000000000000000000abc"), Err(SidError::Digits(_))));
        assert!(matches!(Sid::parse("WKé000000000000000000000000000abc"), Err(SidError::Length(_))));
        let err = Sid::parse_as("WK00000000000000000000000000000abc", Prefix::Task).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'WK00000000000000000000000000000abc' is not a valid WT SID: it should start with WT"
        );
    }

    #[test]
    fn generators_do_not_repeat() {
        let mut random = RandomSids::with_seed(42);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(random.next(Prefix::Task)));
        }
        let mut seq = SequentialSids::new();
        assert_eq!(seq.next(Prefix::Task).to_string(), "WT00000000000000000000000000000001");
        assert_eq!(seq.next(Prefix::Task).to_string(), "WT00000000000000000000000000000002");
    }

    #[test]
    fn serde_uses_the_text_form() {
        let sid = Sid::new(Prefix::Activity, 7);
        let json = serde_json::to_string(&sid).unwrap();
        assert_eq!(json, "\"WA00000000000000000000000000000007\"");
        assert_eq!(serde_json::from_str::<Sid>(&json).unwrap(), sid);
        assert!(serde_json::from_str::<Sid>("\"nope\"").is_err());
    }
}
