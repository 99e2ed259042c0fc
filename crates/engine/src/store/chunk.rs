//! The event log's rows: events packed into one LZ4-compressed row of `event_chunks` per transaction, and
//! read back.

use rusqlite::params;
use rusqlite::types::ValueRef;

use super::schema::damaged;
use super::StoredEvent;
use crate::codec::{put_varint, unzigzag, zigzag, DecodeError, Reader};

/// A row of `event_chunks` is closed once it holds this many bytes of events, so a reader wanting one
/// event decodes at most this much beside it. A commit under HTTP load holds 20-60 events of about 320
/// bytes, one row.
pub(super) const CHUNK_BYTES: usize = 64 << 10;

/// A row of `event_chunks`, which only this module writes, as a blob.
pub(super) fn chunk_bytes<'r>(row: &'r rusqlite::Row<'_>, column: usize) -> rusqlite::Result<&'r [u8]> {
    match row.get_ref(column)? {
        ValueRef::Blob(b) => Ok(b),
        other => Err(damaged(format!("a row of the event log is {}, not bytes", other.data_type()))),
    }
}

/// Inserts a row of `event_chunks`: `last_seq`, `max_at_ms`, `value`.
pub(super) const INSERT_CHUNK: &str =
    "INSERT INTO event_chunks (last_seq, max_at_ms, value) VALUES (?1, ?2, ?3)";

/// Events on their way into one row of `event_chunks`, and the forms of that row.
///
/// The events' *plain form*: per event its `seq` as the difference from the previous event's (the first
/// from 0), its `at_ms` likewise (zigzagged, as a clock may step back), and its value's length and bytes;
/// all numbers varints. A row is a form byte, then:
/// - [`CHUNK_PLAIN`] (written by schema version 5): the plain form;
/// - [`CHUNK_LZ4`] (since version 6): the plain form's length as a varint, then the plain form compressed as
///   one LZ4 block.
///
/// Why compressed: the events of a row repeat each other (the same SIDs, the task's attributes in each of its
/// events, the same field names), so a row of task creates shrinks about eightfold, from about 325 bytes
/// an event to about 40. Every byte is written twice (to the WAL, then by the checkpoint into the
/// database), and LZ4 costs less than a microsecond per event to pack. Under task creates over HTTP the
/// database took about 0.5 KB per task instead of 1.4 (docs/PERFORMANCE.md, "Event-log rows compressed with
/// LZ4").
#[derive(Default)]
pub(super) struct Chunk {
    /// The plain form of the events gathered so far.
    plain: Vec<u8>,
    /// The last row packed ([`Chunk::pack`]), kept to reuse its allocation.
    packed: Vec<u8>,
    last_seq: u64,
    last_at_ms: i64,
    max_at_ms: i64,
}

/// The first byte of a row of `event_chunks` in the plain form.
pub(super) const CHUNK_PLAIN: u8 = 1;

/// The first byte of a row of `event_chunks` in the LZ4 form.
pub(super) const CHUNK_LZ4: u8 = 2;

/// An LZ4 block expands to at most about 255 times its size, so a row claiming more is damaged; it is
/// refused before anything that size is allocated.
pub(super) const LZ4_MAX_RATIO: usize = 255;

impl Chunk {
    /// Appends an event; `seq` must be above the previous one's (the writer has checked the batch).
    pub(super) fn push(&mut self, seq: u64, at_ms: i64, value: &[u8]) {
        if self.plain.is_empty() {
            self.last_seq = 0;
            self.last_at_ms = 0;
            self.max_at_ms = at_ms;
        }
        // Seqs only grow (the writer checks each batch; a converted table is read in `seq` order), so this
        // does not wrap; if a hand-edited file made it, the row would read back as damaged, not panic here.
        put_varint(&mut self.plain, seq.wrapping_sub(self.last_seq));
        put_varint(&mut self.plain, zigzag(at_ms.wrapping_sub(self.last_at_ms)));
        put_varint(&mut self.plain, value.len() as u64);
        self.plain.extend_from_slice(value);
        self.last_seq = seq;
        self.last_at_ms = at_ms;
        self.max_at_ms = self.max_at_ms.max(at_ms);
    }

    /// Whether the row should be closed ([`CHUNK_BYTES`]).
    pub(super) fn is_full(&self) -> bool {
        self.plain.len() >= CHUNK_BYTES
    }

    /// Writes the events gathered so far as one row (nothing if there are none) and starts over.
    pub(super) fn insert(&mut self, insert: &mut rusqlite::Statement<'_>) -> rusqlite::Result<()> {
        if !self.plain.is_empty() {
            // The writer refused seqs above i64::MAX, so this conversion is exact.
            let (last_seq, max_at_ms) = (self.last_seq as i64, self.max_at_ms);
            insert.execute(params![last_seq, max_at_ms, self.pack()?])?;
            self.plain.clear();
        }
        Ok(())
    }

    /// The row for the events gathered so far, in the LZ4 form.
    pub(super) fn pack(&mut self) -> rusqlite::Result<&[u8]> {
        let packed = &mut self.packed;
        packed.clear();
        packed.push(CHUNK_LZ4);
        put_varint(packed, self.plain.len() as u64);
        let start = packed.len();
        packed.resize(start + lz4_flex::block::get_maximum_output_size(self.plain.len()), 0);
        // The room is the most LZ4 can need, so this does not fail; if it did, the transaction would.
        let len = lz4_flex::block::compress_into(&self.plain, &mut packed[start..])
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        packed.truncate(start + len);
        Ok(packed)
    }

    /// Forgets the events gathered so far (their transaction failed).
    pub(super) fn clear(&mut self) {
        self.plain.clear();
    }

    /// The events of a stored row, in order.
    pub(super) fn decode(row: &[u8]) -> rusqlite::Result<Vec<StoredEvent>> {
        let bad = |e: DecodeError| damaged(format!("a row of the event log is not readable: {}", e.0));
        let unpacked;
        let plain = match row.split_first() {
            Some((&CHUNK_PLAIN, plain)) => plain,
            Some((&CHUNK_LZ4, packed)) => {
                unpacked = unpack(packed).map_err(bad)?;
                &unpacked[..]
            }
            Some(_) => return Err(bad(DecodeError("unknown version"))),
            None => return Err(bad(DecodeError("truncated"))),
        };
        let mut reader = Reader { bytes: plain };
        let (mut seq, mut at_ms) = (0u64, 0i64);
        let mut events: Vec<StoredEvent> = Vec::new();
        while !reader.bytes.is_empty() {
            let step = reader.varint().map_err(bad)?;
            // Only the first event may have seq 0 (a step of 0 from the start); after it, seqs grow.
            let in_order = step > 0 || events.is_empty();
            seq = seq
                .checked_add(step)
                .filter(|s| in_order && i64::try_from(*s).is_ok())
                .ok_or_else(|| bad(DecodeError("a seq out of order or out of range")))?;
            at_ms = at_ms.wrapping_add(unzigzag(reader.varint().map_err(bad)?));
            let len = reader.varint().map_err(bad)?;
            let len = usize::try_from(len).map_err(|_| bad(DecodeError("a length out of range")))?;
            let value = reader.take(len).map_err(bad)?.to_vec();
            events.push(StoredEvent { seq, at_ms, value });
        }
        Ok(events)
    }
}

/// The plain form inside a row of the LZ4 form (after its first byte).
pub(super) fn unpack(packed: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut reader = Reader { bytes: packed };
    let len = reader.varint()?;
    let len = usize::try_from(len)
        .ok()
        .filter(|len| *len <= reader.bytes.len().saturating_mul(LZ4_MAX_RATIO))
        .ok_or(DecodeError("a length out of range"))?;
    match lz4_flex::block::decompress(reader.bytes, len) {
        Ok(plain) if plain.len() == len => Ok(plain),
        _ => Err(DecodeError("compressed events that do not decompress")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::SCHEMA_VERSION;
    use crate::store::tests::*;
    use crate::store::*;

    #[test]
    fn the_events_of_one_transaction_share_a_row_and_each_is_read_back() {
        let (dir, store) = opened("chunks");
        let (results_tx, results) = mpsc::channel();
        let release = hold_writer(&store);
        // Seqs with gaps and a clock that steps back, in three batches of one group.
        submit_tagged(&store, vec![event(3, 1_000), put("task", "a", "{}"), event(4, 990)], 0, &results_tx);
        submit_tagged(&store, vec![event(9, -5)], 1, &results_tx);
        submit_tagged(&store, vec![event(10, i64::MAX), event(11, i64::MIN)], 2, &results_tx);
        drop(release);
        for _ in 0..3 {
            results.recv().unwrap().1.unwrap();
        }
        assert_eq!(rows_in(dir.path(), "event_chunks"), 1);
        let all = store.events_after(0, 100).unwrap();
        let got: Vec<(u64, i64)> = all.iter().map(|e| (e.seq, e.at_ms)).collect();
        assert_eq!(got, vec![(3, 1_000), (4, 990), (9, -5), (10, i64::MAX), (11, i64::MIN)]);
        assert_eq!(all[2].value, b"{\"seq\":9}");
        // From anywhere inside the row, with any limit.
        assert_eq!(seqs(&store.events_after(4, 100).unwrap()), vec![9, 10, 11]);
        assert_eq!(seqs(&store.events_after(5, 2).unwrap()), vec![9, 10]);
        assert_eq!(seqs(&store.events_after(10, 100).unwrap()), vec![11]);
        assert!(store.events_after(11, 100).unwrap().is_empty());

        // A group bigger than a row is split, and read back across the rows.
        let big = |seq: u64| Write::Event { seq, at_ms: 0, value: Value::Ready(vec![seq as u8; 10_000]) };
        write(&store, (12..=41).map(big).collect()).unwrap();
        // 300 KB of events beside the first row.
        assert!(rows_in(dir.path(), "event_chunks") > 300_000 / CHUNK_BYTES as i64);
        let read = store.events_after(11, 100).unwrap();
        assert_eq!(seqs(&read), (12..=41).collect::<Vec<_>>());
        assert!(read.iter().all(|e| e.value == vec![e.seq as u8; 10_000]));
        assert_eq!(seqs(&store.events_after(20, 3).unwrap()), vec![21, 22, 23]);
    }

    #[test]
    fn a_damaged_row_of_the_event_log_is_reported_as_a_corrupt_file() {
        for (value, says) in [
            ("x''", "truncated"),
            ("x'03'", "unknown version"),
            ("x'0105000403'", "truncated"),
            // The LZ4 form: no length; a length beyond what the block could hold; a block that is not LZ4;
            // a valid block ("a49") shorter than the length says.
            ("x'02'", "truncated"),
            ("x'02ff7f00'", "out of range"),
            ("x'0205ffffffffff'", "do not decompress"),
            ("x'020a30613439'", "do not decompress"),
            ("x'0101000000000000'", "out of order"),
            // A step of 2^63.
            ("x'01808080808080808080010000'", "out of range"),
            ("42", "not bytes"),
        ] {
            let dir = TempDir::new("badchunk");
            {
                let store = Store::open(dir.path()).unwrap();
                write(&store, vec![event(1, 10)]).unwrap();
            }
            Connection::open(dir.path().join(DB_FILE))
                .unwrap()
                .execute(&format!("INSERT INTO event_chunks VALUES (9, 0, {value})"), [])
                .unwrap();
            let store = Store::open(dir.path()).unwrap();
            let err = store.events_after(0, 10).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{value}: {err:?}");
            let message = err.to_string();
            assert!(
                message.contains(says) && message.contains("restore it from a backup"),
                "{value}: {message}"
            );
            // What is before the damage is still readable.
            assert_eq!(seqs(&store.events_after(0, 1).unwrap()), vec![1]);
        }
    }

    #[test]
    fn event_rows_are_compressed_and_read_back_whole() {
        let (dir, store) = opened("lz4");
        // Events like a task's: the same SIDs and field names over and over.
        let value = |seq: u64| {
            format!(
                "{{\"seq\":{seq},\"workspace_sid\":\"WS0123456789abcdef0123456789abcdef\",\
                 \"task_sid\":\"WT{seq:032}\",\"attributes\":{{\"selected_product\":\"support\"}}}}"
            )
            .into_bytes()
        };
        let batch =
            (1..=200).map(|seq| Write::Event { seq, at_ms: seq as i64, value: Value::Ready(value(seq)) });
        write(&store, batch.collect()).unwrap();
        let plain: usize = (1..=200).map(|seq| value(seq).len()).sum();
        let (rows, stored, first): (i64, i64, Vec<u8>) = Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .query_row(
                "SELECT count(*), sum(length(value)), (SELECT substr(value, 1, 1) FROM event_chunks) \
                 FROM event_chunks",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!((rows, first), (1, vec![CHUNK_LZ4]));
        assert!((stored as usize) * 4 < plain, "{stored} bytes stored for {plain}");
        let read = store.events_after(0, 1000).unwrap();
        assert_eq!(seqs(&read), (1..=200).collect::<Vec<_>>());
        assert!(read.iter().all(|e| e.value == value(e.seq) && e.at_ms == e.seq as i64));
    }

    proptest::proptest! {
        /// Any events come back from a packed row as they went in, and a row with any one byte changed is
        /// read or refused, never a panic.
        #[test]
        fn a_packed_row_round_trips_and_damage_never_panics(
            events in proptest::collection::vec(
                (1u64..1000, proptest::num::i64::ANY, proptest::collection::vec(0u8..4, 0..200)),
                1..40,
            ),
            at in proptest::num::usize::ANY,
            flip in 1u8..=255,
        ) {
            let mut chunk = Chunk::default();
            let mut seq = 0;
            let mut want = Vec::new();
            for (step, at_ms, value) in events {
                seq += step;
                chunk.push(seq, at_ms, &value);
                want.push(StoredEvent { seq, at_ms, value });
            }
            let mut row = chunk.pack().unwrap().to_vec();
            proptest::prop_assert_eq!(Chunk::decode(&row).unwrap(), want);
            let i = at % row.len();
            row[i] ^= flip;
            let _ = Chunk::decode(&row);
        }
    }

    #[test]
    fn a_version_5_file_keeps_its_plain_rows_and_compresses_new_ones() {
        let dir = TempDir::new("v5");
        {
            let store = Store::open(dir.path()).unwrap();
            write(&store, vec![put("task", "WT1", "{}"), event(1, 10), event(2, 20)]).unwrap();
            write(&store, vec![event(3, 30)]).unwrap();
        }
        // As version 5 wrote them: each row in the plain form.
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            let rows: Vec<(i64, Vec<u8>)> = conn
                .prepare("SELECT last_seq, value FROM event_chunks")
                .unwrap()
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(rows.len(), 2);
            for (last_seq, row) in rows {
                let mut chunk = Chunk::default();
                for e in Chunk::decode(&row).unwrap() {
                    chunk.push(e.seq, e.at_ms, &e.value);
                }
                let plain = [&[CHUNK_PLAIN][..], &chunk.plain].concat();
                conn.execute(
                    "UPDATE event_chunks SET value = ?2 WHERE last_seq = ?1",
                    params![last_seq, plain],
                )
                .unwrap();
            }
            conn.pragma_update(None, "user_version", 5).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(user_version(dir.path()), SCHEMA_VERSION);
        let loaded = store.load().unwrap();
        assert_eq!((loaded.records.len(), loaded.last_event_seq), (1, 3));
        write(&store, vec![event(4, 40), event(5, 50), Write::PruneEvents { before_ms: 15 }]).unwrap();
        // The plain rows and the new compressed one, read together; the prune rewrote the first row.
        let read = store.events_after(0, 10).unwrap();
        assert_eq!(seqs(&read), vec![2, 3, 4, 5]);
        assert_eq!(read[0].value, b"{\"seq\":2}");
        let forms: Vec<Vec<u8>> = Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .prepare("SELECT substr(value, 1, 1) FROM event_chunks ORDER BY last_seq")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(forms, vec![vec![CHUNK_LZ4], vec![CHUNK_PLAIN], vec![CHUNK_LZ4]]);
    }
}
