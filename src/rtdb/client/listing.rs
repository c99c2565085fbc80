//! A shallow listing (`shallow=true`: `{"key": value, ...}`, a child with children of its own
//! shown as `true`) read as it arrives, child by child: what is held is the text of the child
//! being read, never the whole listing (a node of 1M children lists ~16 MB). The chunked delete
//! takes its children from it as it needs them.

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, Stream, StreamExt};

use crate::{Error, ErrorCode, Result};

/// A child as a shallow listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Child {
    pub key: String,
    /// It has children of its own (a shallow listing shows `true`), rather than a plain value.
    pub object: bool,
}

/// A node's children as they are listed, one at a time.
pub(crate) type Children = BoxStream<'static, Result<Child>>;

/// Where the reading is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Before the value: an object is a listing, `null` none, anything else a plain value.
    #[default]
    Start,
    /// After `{`: the first child or `}`.
    First,
    /// After a child: `,` and the next, or `}`.
    Next,
    End,
    Plain,
}

/// The reader: the text not read yet (and some already read, dropped as it grows).
#[derive(Debug, Default)]
pub(crate) struct Listed {
    text: Vec<u8>,
    read: usize,
    at: At,
}

fn not_json() -> Error {
    Error::new(
        ErrorCode::BadRequest,
        "The server's shallow listing is not the JSON object expected",
    )
}

fn skip_ws(t: &[u8], mut i: usize) -> usize {
    while i < t.len() && matches!(t[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The end of the JSON string at `i` (past its closing quote); `None`: not all here yet.
fn string_end(t: &[u8], i: usize) -> Result<Option<usize>> {
    if t[i] != b'"' {
        return Err(not_json());
    }
    let mut j = i + 1;
    while j < t.len() {
        match t[j] {
            b'\\' => j += 2,
            b'"' => return Ok(Some(j + 1)),
            _ => j += 1,
        }
    }
    Ok(None)
}

/// The end of the plain value at `i` (a number, `true`, `false`, `null`); `None`: not all here.
fn plain_end(t: &[u8], i: usize) -> Result<Option<usize>> {
    if matches!(t[i], b'{' | b'[') {
        return Err(not_json());
    }
    let mut j = i;
    while j < t.len() && !matches!(t[j], b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
        j += 1;
    }
    Ok((j < t.len()).then_some(j))
}

impl super::Client {
    /// The children of `path` from its shallow listing, taken as they arrive (one request; the
    /// text of one child held at a time): none for a missing node, `None` for a plain value.
    pub(crate) async fn list_children(&self, path: &str) -> Result<Option<Children>> {
        Listed::start(self.get_shallow_stream(path).await?).await
    }
}

impl Listed {
    /// The listing of `body`: `None` when it is a plain value (the rest is not read).
    pub(crate) async fn start(
        mut body: impl Stream<Item = Result<Bytes>> + Send + Unpin + 'static,
    ) -> Result<Option<Children>> {
        let mut r = Listed::default();
        while r.begin()? == At::Start {
            match body.next().await {
                Some(piece) => r.feed(&piece?),
                None => return Err(r.cut_off()),
            }
        }
        if r.at == At::Plain {
            return Ok(None);
        }
        let children = stream::unfold(Some((body, r)), |state| async move {
            let (mut body, mut r) = state?;
            loop {
                match r.child() {
                    Ok(Some(c)) => return Some((Ok(c), Some((body, r)))),
                    Ok(None) if r.at == At::End => return None,
                    Ok(None) => match body.next().await {
                        Some(Ok(piece)) => r.feed(&piece),
                        Some(Err(e)) => return Some((Err(e), None)),
                        None => return Some((Err(r.cut_off()), None)),
                    },
                    Err(e) => return Some((Err(e), None)),
                }
            }
        });
        Ok(Some(children.boxed()))
    }

    fn cut_off(&self) -> Error {
        Error::new(
            ErrorCode::ConnectionFailed,
            "The server's shallow listing ended before it was complete",
        )
    }

    fn feed(&mut self, piece: &[u8]) {
        if self.read > 0 && self.read * 2 >= self.text.len() {
            self.text.drain(..self.read);
            self.read = 0;
        }
        self.text.extend_from_slice(piece);
    }

    /// Past `Start` when the text says what the value is.
    fn begin(&mut self) -> Result<At> {
        let t = &self.text;
        let i = skip_ws(t, self.read);
        if self.at != At::Start || i == t.len() {
            return Ok(self.at);
        }
        match t[i] {
            b'{' => (self.read, self.at) = (i + 1, At::First),
            b'n' if t.len() - i < 4 => {}
            b'n' if &t[i..i + 4] == b"null" => (self.read, self.at) = (i + 4, At::End),
            _ => self.at = At::Plain,
        }
        Ok(self.at)
    }

    /// The next child, when all its text is here.
    fn child(&mut self) -> Result<Option<Child>> {
        let t = &self.text;
        let mut i = skip_ws(t, self.read);
        if i == t.len() {
            return Ok(None);
        }
        match (self.at, t[i]) {
            (At::First | At::Next, b'}') => {
                (self.read, self.at) = (i + 1, At::End);
                return Ok(None);
            }
            (At::First, _) => {}
            (At::Next, b',') => i = skip_ws(t, i + 1),
            (At::Next, _) => return Err(not_json()),
            _ => return Ok(None),
        }
        if i == t.len() {
            return Ok(None);
        }
        let Some(key_end) = string_end(t, i)? else {
            return Ok(None);
        };
        let colon = skip_ws(t, key_end);
        if colon == t.len() {
            return Ok(None);
        }
        if t[colon] != b':' {
            return Err(not_json());
        }
        let v = skip_ws(t, colon + 1);
        if v == t.len() {
            return Ok(None);
        }
        let v_end = if t[v] == b'"' {
            string_end(t, v)?
        } else {
            plain_end(t, v)?
        };
        let Some(v_end) = v_end else {
            return Ok(None);
        };
        let key: String = serde_json::from_slice(&t[i..key_end]).map_err(|_| not_json())?;
        let object = &t[v..v_end] == b"true";
        (self.read, self.at) = (v_end, At::Next);
        Ok(Some(Child { key, object }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listing of `text` delivered in pieces of `size` bytes.
    async fn listed(text: &str, size: usize) -> Result<Option<Vec<Child>>> {
        let pieces: Vec<Result<Bytes>> = text
            .as_bytes()
            .chunks(size)
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        match Listed::start(stream::iter(pieces)).await? {
            None => Ok(None),
            Some(children) => children
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<Vec<_>>>()
                .map(Some),
        }
    }

    fn child(key: &str, object: bool) -> Child {
        Child {
            key: key.to_string(),
            object,
        }
    }

    #[tokio::test]
    async fn reads_a_listing_child_by_child_however_it_is_cut() {
        let text =
            r#" { "a" : true, "b\"\u00e9": 5,"c":"true" , "d,}": -1.5e3, "": true,"n":null } "#;
        let want = vec![
            child("a", true),
            child("b\"é", false),
            child("c", false),
            child("d,}", false),
            child("", true),
            child("n", false),
        ];
        for size in 1..=text.len() {
            assert_eq!(
                listed(text, size).await.unwrap(),
                Some(want.clone()),
                "{size}"
            );
        }
        for size in [1, 2, 100] {
            assert_eq!(listed(" null", size).await.unwrap(), Some(vec![]));
            assert_eq!(listed("{}", size).await.unwrap(), Some(vec![]));
            assert_eq!(listed("12", size).await.unwrap(), None);
            assert_eq!(listed(r#""text""#, size).await.unwrap(), None);
            assert_eq!(listed("true", size).await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn a_broken_listing_is_an_error() {
        for bad in [
            r#"{"a" true}"#,
            r#"{"a": true "b": 1}"#,
            r#"{"a": {"b": 1}}"#,
            "nul",
        ] {
            assert!(listed(bad, 3).await.is_err(), "{bad}");
        }
        let e = listed(r#"{"a": true, "b""#, 4).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::ConnectionFailed);
        assert!(listed("", 1).await.is_err());
    }
}
