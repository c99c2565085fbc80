//! Settling writes whose outcome is unknown (a 500, or a connection reset or timeout after the
//! request was sent). Writes are never repeated blindly: the node is read back and the write
//! counts as done only when the node holds what was written (`matches_written`). A conditional
//! write whose node is unchanged is tried again; so is an idempotent write (PUT, PATCH, DELETE:
//! sending it twice leaves what sending it once leaves) that is not there, as when an outage
//! dropped it before it was applied — while its gate admits it: a gated write whose gate has
//! closed (a lock holder past its lease) is never sent again, see `resettle`. Anything else is
//! WRITE_OUTCOME_UNKNOWN.

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::transport::{Full, Req, WriteError, ETAG_REQUEST_HEADER};
use super::{CasOutcome, Client, Versioned};
use crate::rtdb::NULL_ETAG;
use crate::{Error, ErrorCode, Result};

/// How an idempotent write ended: answered, or found applied after an unknown outcome (the
/// node as read back).
pub(super) enum Settled {
    Answered(Full),
    Landed(Value),
}

impl Client {
    /// A conditional PUT (`body` = Some) or DELETE. An unknown outcome is settled by re-reading the
    /// node: our value there -> written; the node unchanged -> the write did not happen, try again;
    /// anything else -> WRITE_OUTCOME_UNKNOWN.
    pub(super) async fn conditional(
        &self,
        method: Method,
        p: &str,
        body: Option<(Bytes, &Value)>,
        etag: &str,
    ) -> Result<CasOutcome> {
        let written = body
            .as_ref()
            .map(|(_, v)| (*v).clone())
            .unwrap_or(Value::Null);
        let mut req = self
            .write_req(method.clone(), p)
            .header("if-match", etag)
            .header(ETAG_REQUEST_HEADER, "true");
        req.body = body.map(|(b, _)| b);
        let mut rechecks = 0u32;
        let mut retried_after_unknown = false;
        loop {
            match self.write(req.clone()).await {
                Ok(r) if r.status == StatusCode::PRECONDITION_FAILED => {
                    let current = Versioned {
                        etag: r.etag_required(&self.at(p))?,
                        value: r.json()?,
                    };
                    if retried_after_unknown && matches_written(&written, &current.value) {
                        // Our earlier attempt landed after all.
                        return Ok(CasOutcome::Written(current));
                    }
                    return Ok(CasOutcome::Mismatch(current));
                }
                Ok(r) => {
                    let new_etag = match r.etag.clone() {
                        Some(e) => e,
                        None if method == Method::DELETE => NULL_ETAG.to_string(),
                        None => return Err(r.etag_required(&self.at(p)).unwrap_err()),
                    };
                    let value = if method == Method::DELETE {
                        Value::Null
                    } else {
                        r.json()?
                    };
                    return Ok(CasOutcome::Written(Versioned {
                        value,
                        etag: new_etag,
                    }));
                }
                Err(WriteError::Failed(e)) => return Err(e),
                Err(WriteError::Unknown(why)) => {
                    let current = self.get_versioned_norm(p).await.map_err(|e| {
                        Error::new(
                            ErrorCode::WriteOutcomeUnknown,
                            format!("Conditional {method} of {} may or may not have happened ({why}); re-reading it failed: {e}", self.at(p)),
                        )
                    })?;
                    if current.etag != etag && matches_written(&written, &current.value) {
                        return Ok(CasOutcome::Written(current));
                    }
                    if current.etag == etag && rechecks < self.inner.opts.retry.max_retries {
                        rechecks += 1;
                        retried_after_unknown = true;
                        self.may_resend(&req, &why)?;
                        tokio::time::sleep(self.inner.opts.retry.delay(rechecks)).await;
                        self.may_resend(&req, &why)?;
                        continue;
                    }
                    return Err(self.outcome_unknown(method.as_str(), p, &why));
                }
            }
        }
    }

    /// Send an idempotent write (PUT, PATCH, DELETE). When its outcome is unknown, read the node
    /// back: `landed(current)` -> done (`Settled::Landed(current)`); not there -> send it again,
    /// up to the retry policy's count, then WRITE_OUTCOME_UNKNOWN.
    pub(super) async fn idempotent_write(
        &self,
        req: Req,
        p: &str,
        landed: impl Fn(&Value) -> bool,
    ) -> Result<Settled> {
        match self.write(req.clone()).await {
            Ok(r) => Ok(Settled::Answered(r)),
            Err(WriteError::Failed(e)) => Err(e),
            Err(WriteError::Unknown(why)) => self.resettle(req, p, why, landed).await,
        }
    }

    /// `req` was sent and its outcome is unknown (`why`): re-read the node; if the write is not
    /// there, send it again (then the same), up to the retry policy's count.
    ///
    /// "Not there" may mean the write never happened, or that something else was written over
    /// it since. While `req`'s gate admits it (for the scripts' `db`: this process still holds
    /// the lock, so every write to the data is its own or made under its lease), sending it
    /// again is right: it is then simply the latest write. Once the gate refuses (the lease is
    /// over, or the lock is known lost), what is there may be the new holder's committed work:
    /// nothing is sent over it, and the refusal (LOCK_LOST) says the write's outcome is unknown.
    pub(super) async fn resettle(
        &self,
        req: Req,
        p: &str,
        mut why: String,
        landed: impl Fn(&Value) -> bool,
    ) -> Result<Settled> {
        let method = req.method.to_string();
        let mut resends = 0u32;
        loop {
            let current = self.recheck_read(p, &why).await?;
            if landed(&current) {
                return Ok(Settled::Landed(current));
            }
            if resends >= self.inner.opts.retry.max_retries {
                return Err(self.outcome_unknown(&method, p, &why));
            }
            resends += 1;
            self.may_resend(&req, &why)?;
            tokio::time::sleep(self.inner.opts.retry.delay(resends)).await;
            self.may_resend(&req, &why)?;
            why = match self.write(req.clone()).await {
                Ok(r) => return Ok(Settled::Answered(r)),
                Err(WriteError::Failed(e)) => return Err(e),
                Err(WriteError::Unknown(why)) => why,
            };
        }
    }

    /// Ok when `req`, whose last attempt's outcome is unknown (`why`), may be sent again now
    /// (its gate admits it).
    fn may_resend(&self, req: &Req, why: &str) -> Result<()> {
        req.admit()
            .map(|_| ())
            .map_err(|e| self.not_sent_again(req, why, true, e))
    }

    async fn recheck_read(&self, p: &str, why: &str) -> Result<Value> {
        let r = self.read(Req::new(Method::GET, p)).await.map_err(|e| {
            Error::new(
                ErrorCode::WriteOutcomeUnknown,
                format!(
                    "A write to {} may or may not have happened ({why}); re-reading it failed: {e}",
                    self.at(p)
                ),
            )
        })?;
        r.json()
    }

    pub(super) fn outcome_unknown(&self, method: &str, p: &str, why: &str) -> Error {
        Error::new(
            ErrorCode::WriteOutcomeUnknown,
            format!("{method} of {} may or may not have happened ({why}); it was not repeated blindly, check the data", self.at(p)),
        )
    }
}

/// Does `current` (read back from the server) hold what `written` asked for? Server values
/// (`{".sv": ...}`) match any number; null children and empty objects vanish as RTDB drops them.
pub(crate) fn matches_written(written: &Value, current: &Value) -> bool {
    fn is_sv(v: &Value) -> bool {
        matches!(v, Value::Object(o) if o.len() == 1 && o.contains_key(".sv"))
    }
    fn normalize(v: &Value) -> Value {
        match v {
            _ if is_sv(v) => v.clone(),
            Value::Array(a) => normalize(&Value::Object(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| (i.to_string(), x.clone()))
                    .collect(),
            )),
            Value::Object(o) => {
                let m: serde_json::Map<String, Value> = o
                    .iter()
                    .filter(|(k, _)| !k.starts_with('.'))
                    .map(|(k, x)| (k.clone(), normalize(x)))
                    .filter(|(_, x)| !x.is_null())
                    .collect();
                if m.is_empty() {
                    Value::Null
                } else {
                    Value::Object(m)
                }
            }
            other => other.clone(),
        }
    }
    fn eq(w: &Value, c: &Value) -> bool {
        if is_sv(w) {
            return c.is_number();
        }
        match (w, c) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| eq(x, y)))
            }
            (a, b) => a == b,
        }
    }
    eq(&normalize(written), &normalize(current))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn written_values_match_what_the_server_keeps() {
        assert!(matches_written(
            &json!({"a": 1, "b": null, "c": {}}),
            &json!({"a": 1.0})
        ));
        assert!(matches_written(
            &json!({"t": {".sv": "timestamp"}, "o": "me"}),
            &json!({"t": 1700000000000i64, "o": "me"})
        ));
        assert!(!matches_written(
            &json!({"t": {".sv": "timestamp"}, "o": "me"}),
            &json!({"t": 1, "o": "you"})
        ));
        assert!(!matches_written(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(matches_written(&json!([1, 2]), &json!({"0": 1, "1": 2})));
        assert!(matches_written(&Value::Null, &json!({})));
        assert!(!matches_written(&Value::Null, &json!(0)));
        assert!(matches_written(&json!("x"), &json!("x")));
    }
}
