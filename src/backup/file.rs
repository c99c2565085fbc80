//! The backup file format and its readers.
//!
//! A backup file is one JSON object:
//!
//! ```json
//! {"metadata": {"version": 2, "tool": "msr-firebase", "createdAt": "2024-05-01T10:00:00.123Z",
//!               "databaseUrl": "https://db.firebaseio.com", "shift": "prod", "path": "/prod",
//!               "excluded": ["migrations/_lock"]},
//!  "data": <the subtree exactly as the server sent it>}
//! ```
//!
//! The writer emits the metadata prefix, then copies the server's response body byte for byte,
//! then the closing brace, so the data never goes through a `serde_json::Value` on the way out.
//! `excluded` lists paths (relative to `path`) that a restore never touches: the lock node is kept
//! in the file as it was at backup time (for inspection), but a restore skips it and leaves the
//! live lock alone.
//!
//! Versions: 2 (this one) holds the data as a `format=export` read returns it, priorities
//! included — a node's `".priority"` member, a primitive with one as `{".value": v,
//! ".priority": p}` — and a restore writes them back. Version 1 files (plain data, no
//! priorities) are still read and restored; a file of a later version is refused.
//!
//! The readers are streaming (`serde_json` over a `BufReader`, one pass per use):
//! - `Mode::Head` stops as soon as the metadata block is read (listing);
//! - `Mode::Validate` checks the whole file (well-formed JSON, metadata, every key a legal RTDB
//!   key) and collects the keys of `data` and of `data.migrations` (the lock's parent), holding
//!   no data in memory;
//! - `Mode::Shred` hands `data` to the restore's `Shredder`, which turns it into writes as it
//!   is read, so memory does not grow with the backup;
//! - `Mode::Copy` writes `data` out again as compact JSON as it is read (a rehearsal streams it
//!   into its emulator).

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::restore::Shredder;
use crate::rtdb::path;

/// Current format version (2: the data in the export form, with priorities).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version this one reads (1: plain data, without priorities).
pub const OLDEST_VERSION: u32 = 1;
/// The `tool` field of every backup this crate writes.
pub const TOOL: &str = "msr-firebase";
/// Paths (relative to the backed-up path) that a restore never writes: the live migration lock.
pub const EXCLUDED: [&str; 1] = ["migrations/_lock"];

/// The `metadata` block of a backup file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub version: u32,
    pub tool: String,
    /// ISO 8601, UTC, milliseconds (`2024-05-01T10:00:00.123Z`).
    pub created_at: String,
    /// The database URL without credentials or query parameters other than `ns`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// The configured shift (normalised, no slashes at the ends), `null` for the root.
    #[serde(default)]
    pub shift: Option<String>,
    /// The backed-up path: `/<shift>`, or `/` for the root.
    pub path: String,
    /// Paths relative to `path` that a restore skips.
    #[serde(default)]
    pub excluded: Vec<String>,
}

impl Metadata {
    /// The metadata of a backup of `shift` (`None`: the root) made at `created` by this version.
    pub fn new(
        created: chrono::DateTime<chrono::Utc>,
        database_url: Option<String>,
        shift: Option<String>,
    ) -> Metadata {
        Metadata {
            version: FORMAT_VERSION,
            tool: TOOL.into(),
            created_at: created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            database_url,
            path: super::shown(shift.as_deref()),
            shift,
            excluded: EXCLUDED.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Metadata {
    /// `{"metadata":<metadata>,"data":` — what goes before the streamed body.
    pub fn prefix(&self) -> Vec<u8> {
        let mut out = b"{\"metadata\":".to_vec();
        serde_json::to_writer(&mut out, self).expect("metadata serialises");
        out.extend_from_slice(b",\n\"data\":");
        out
    }
}

/// What goes after the streamed body.
pub const SUFFIX: &[u8] = b"}\n";

/// How much of the file to read.
pub enum Mode<'a> {
    Head,
    Validate,
    /// Hand `data` to a shredder (it stops the read by failing when its receiver is gone).
    Shred(&'a mut Shredder),
    /// Write `data` as compact JSON to a writer (a failed write stops the read).
    Copy(&'a mut dyn std::io::Write),
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    pub metadata: Option<Metadata>,
    pub has_data: bool,
    /// `Validate`: the top-level keys of `data` when it is an object (`None` otherwise).
    pub top_keys: Option<Vec<String>>,
    /// `Validate`: the keys of `data.<protected parent>` (`migrations`) when it is an object.
    pub protected_keys: Option<Vec<String>>,
    /// `Shred`: the shredder asked to stop.
    pub stopped: bool,
}

const STOP: &str = "\u{0}msr-stop";

/// Read a backup file. Errors are the problem in words (the caller adds the file name).
pub fn scan(reader: impl Read, mut mode: Mode<'_>) -> Result<Scan, String> {
    let head = matches!(mode, Mode::Head);
    let mut st = Scan::default();
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(
        256 * 1024,
        reader,
    ));
    let res = FileSeed {
        st: &mut st,
        mode: &mut mode,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match res {
        Ok(()) => {}
        Err(_) if head && st.metadata.is_some() => return Ok(st),
        Err(_) if st.stopped => return Ok(st),
        Err(e) if e.is_eof() => return Err(format!("the file is truncated ({e})")),
        Err(e) if e.is_io() => return Err(format!("could not read it ({e})")),
        Err(e) => return Err(format!("it is not valid backup JSON ({e})")),
    }
    if st.metadata.is_none() {
        return Err("it has no \"metadata\" block (not an msr-firebase backup)".into());
    }
    if !st.has_data && !head {
        return Err("it has no \"data\" field".into());
    }
    Ok(st)
}

/// Check a metadata block against what this version understands.
pub fn check_metadata(m: &Metadata) -> Result<(), String> {
    if m.tool != TOOL {
        return Err(format!("it was written by \"{}\", not by {TOOL}", m.tool));
    }
    if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&m.version) {
        return Err(format!(
            "its format version is {} but this version of {TOOL} reads versions {OLDEST_VERSION} to {FORMAT_VERSION}",
            m.version
        ));
    }
    Ok(())
}

struct FileSeed<'s, 'm> {
    st: &'s mut Scan,
    mode: &'s mut Mode<'m>,
}

impl<'de> DeserializeSeed<'de> for FileSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a backup object {\"metadata\": {...}, \"data\": ...}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metadata" => {
                    if self.st.metadata.is_some() {
                        return Err(de::Error::custom("\"metadata\" appears twice"));
                    }
                    let m: Metadata = map
                        .next_value()
                        .map_err(|e| de::Error::custom(format!("bad \"metadata\" block: {e}")))?;
                    self.st.metadata = Some(m);
                    if matches!(self.mode, Mode::Head) {
                        return Err(de::Error::custom(STOP));
                    }
                }
                "data" => {
                    if self.st.has_data {
                        return Err(de::Error::custom("\"data\" appears twice"));
                    }
                    self.st.has_data = true;
                    if matches!(self.mode, Mode::Head) {
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        // (Validate, Shred and Copy go through DataSeed.)
                        map.next_value_seed(DataSeed {
                            st: &mut *self.st,
                            mode: &mut *self.mode,
                        })?;
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The `data` value: validated (`Validate`) or handed to the shredder (`Shred`).
struct DataSeed<'s, 'm> {
    st: &'s mut Scan,
    mode: &'s mut Mode<'m>,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.mode {
            Mode::Shred(sh) => {
                let res = (&mut **sh).deserialize(d);
                if sh.stopped() {
                    self.st.stopped = true;
                }
                res
            }
            Mode::Copy(w) => {
                serde_transcode::transcode(d, &mut serde_json::Serializer::new(&mut **w))
                    .map_err(de::Error::custom)
            }
            _ => d.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("RTDB data (any JSON value)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = Vec::new();
        let protected_parent = EXCLUDED[0].split('/').next().unwrap_or_default();
        while let Some(key) = map.next_key::<String>()? {
            check_key(&key)?;
            if key == protected_parent {
                self.st.protected_keys = map.next_value_seed(ChildKeys)?;
            } else {
                map.next_value_seed(KeyCheck)?;
            }
            if !is_meta(&key) {
                keys.push(key);
            }
        }
        self.st.top_keys = Some(keys);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(KeyCheck)?.is_some() {}
        self.st.top_keys = None;
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        check_string(v)
    }
}

/// Checks a value like `KeyCheck`, returning its keys when it is an object.
struct ChildKeys;

impl<'de> DeserializeSeed<'de> for ChildKeys {
    type Value = Option<Vec<String>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ChildKeys {
    type Value = Option<Vec<String>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            check_key(&key)?;
            map.next_value_seed(KeyCheck)?;
            if !is_meta(&key) {
                keys.push(key);
            }
        }
        Ok(Some(keys))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element_seed(KeyCheck)?.is_some() {}
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        check_string(v).map(|()| None)
    }
}

/// A priority (`.priority`) or a prioritised primitive's value (`.value`): not a child.
pub(crate) fn is_meta(key: &str) -> bool {
    key == ".priority" || key == ".value"
}

fn check_key<E: de::Error>(key: &str) -> Result<(), E> {
    if is_meta(key) {
        return Ok(());
    }
    path::validate_key(key).map_err(|e| {
        E::custom(format!(
            "the data holds a key RTDB cannot store: {}",
            e.message
        ))
    })
}

/// RTDB stores strings of at most 10 MB.
const MAX_STRING_BYTES: usize = 10 * 1024 * 1024;

fn check_string<E: de::Error>(v: &str) -> Result<(), E> {
    if v.len() > MAX_STRING_BYTES {
        return Err(E::custom(format!(
            "the data holds a string of {} bytes; RTDB stores strings of at most 10 MB",
            v.len()
        )));
    }
    Ok(())
}

/// Walks a value checking every object key and string, keeping nothing.
struct KeyCheck;

impl<'de> DeserializeSeed<'de> for KeyCheck {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyCheck {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            check_key(&key)?;
            map.next_value_seed(KeyCheck)?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(KeyCheck)?.is_some() {}
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        check_string(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> Metadata {
        Metadata {
            version: FORMAT_VERSION,
            tool: TOOL.into(),
            created_at: "2024-05-01T10:00:00.123Z".into(),
            database_url: Some("http://127.0.0.1:1?ns=x".into()),
            shift: Some("prod".into()),
            path: "/prod".into(),
            excluded: EXCLUDED.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn file(body: &str) -> Vec<u8> {
        let mut f = meta().prefix();
        f.extend_from_slice(body.as_bytes());
        f.extend_from_slice(SUFFIX);
        f
    }

    #[test]
    fn written_prefix_body_suffix_is_one_json_document() {
        let f = file(r#"{"a":{"b":1},"c":"x"}"#);
        let v: serde_json::Value = serde_json::from_slice(&f).unwrap();
        assert_eq!(v["data"], json!({"a": {"b": 1}, "c": "x"}));
        assert_eq!(v["metadata"]["shift"], "prod");
        assert_eq!(v["metadata"]["excluded"], json!(["migrations/_lock"]));
    }

    #[test]
    fn head_stops_after_metadata() {
        // Garbage after the metadata does not matter to a head read.
        let mut f = meta().prefix();
        f.extend_from_slice(b"{not json");
        let s = scan(&f[..], Mode::Head).unwrap();
        assert_eq!(s.metadata, Some(meta()));
    }

    #[test]
    fn validate_collects_top_keys() {
        let s = scan(
            &file(r#"{"a":{"b":[1,{"c":2}]},"z":null}"#)[..],
            Mode::Validate,
        )
        .unwrap();
        assert_eq!(s.top_keys, Some(vec!["a".to_string(), "z".to_string()]));
        assert_eq!(s.protected_keys, None);
        let s = scan(
            &file(r#"{"migrations":{"_lock":{"x":1},"note":2},"b":3}"#)[..],
            Mode::Validate,
        )
        .unwrap();
        assert_eq!(
            s.protected_keys,
            Some(vec!["_lock".to_string(), "note".to_string()])
        );
        let s = scan(&file("42")[..], Mode::Validate).unwrap();
        assert_eq!(s.top_keys, None);
        assert!(s.has_data);
    }

    #[test]
    fn copy_writes_the_data_out_again() {
        let mut out = Vec::new();
        let s = scan(
            &file(r#"{ "a": {"b": [1, {"c": 2.5}]}, "z": "q\"" }"#)[..],
            Mode::Copy(&mut out),
        )
        .unwrap();
        assert_eq!(s.metadata, Some(meta()));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"b":[1,{"c":2.5}]},"z":"q\""}"#
        );
        // Data before the metadata is copied too.
        let mut out = Vec::new();
        let mut f = br#"{"data":7,"metadata":"#.to_vec();
        f.extend_from_slice(&serde_json::to_vec(&meta()).unwrap());
        f.push(b'}');
        scan(&f[..], Mode::Copy(&mut out)).unwrap();
        assert_eq!(out, b"7");
    }

    #[test]
    fn validate_rejects_broken_files() {
        let f = file(r#"{"a":1,,}"#);
        assert!(scan(&f[..], Mode::Validate)
            .unwrap_err()
            .contains("not valid"));
        let f = file(r#"{"a.b":1}"#);
        let e = scan(&f[..], Mode::Validate).unwrap_err();
        assert!(e.contains("a.b"), "{e}");
        let e = scan(&br#"{"data":{}}"#[..], Mode::Validate).unwrap_err();
        assert!(e.contains("metadata"), "{e}");
        let e = scan(&br#"[1,2]"#[..], Mode::Validate).unwrap_err();
        assert!(e.contains("not valid"), "{e}");
        let mut f = meta().prefix();
        f.truncate(f.len() - 3);
        let e = scan(&f[..], Mode::Validate).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn check_metadata_names_the_problem() {
        assert!(check_metadata(&meta()).is_ok());
        let m = Metadata {
            version: 9,
            ..meta()
        };
        assert!(check_metadata(&m).unwrap_err().contains("version is 9"));
        let m = Metadata {
            tool: "other".into(),
            ..meta()
        };
        assert!(check_metadata(&m).unwrap_err().contains("other"));
    }
}
