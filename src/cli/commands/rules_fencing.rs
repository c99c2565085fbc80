//! `rules:fencing [path...]`: the Security Rules that make the database refuse a write from a
//! lock holder that was taken over (`locking.serverFencing`), ready to merge — the document
//! `lock::server_fence::rules_fragment` makes for the configured shift and the given paths
//! (relative to it; none: the whole shift). `--format json`: `{ document, rule, claim, paths }`
//! (`document`: the rules document as plain JSON).

use serde_json::json;

use crate::cli::output::Io;
use crate::config::Config;
use crate::lock::server_fence::{rules_fragment, write_rule, EPOCH_CLAIM};
use crate::rules::Rules;
use crate::{Error, ExitStatus};

pub fn run(cfg: &Config, paths: &[String], io: &mut Io, json: bool) -> ExitStatus {
    let shift = cfg.shift_path();
    let text = match rules_fragment(shift.as_deref(), paths) {
        Ok(t) => t,
        Err(e) => {
            return io.fail_plain(
                "Cannot write the fencing rules",
                &e,
                ExitStatus::GeneralError,
            )
        }
    };
    if !json {
        io.line(text.trim_end());
        return ExitStatus::Success;
    }
    match Rules::parse(&text) {
        Ok(rules) => {
            io.json(&json!({
                "document": rules.strict(),
                "rule": write_rule(shift.as_deref()),
                "claim": EPOCH_CLAIM,
                "paths": paths,
            }));
            ExitStatus::Success
        }
        Err(e) => {
            let e = Error::internal(format!("the fencing rules do not parse: {e}"));
            io.fail_plain(
                "Cannot write the fencing rules",
                &e,
                ExitStatus::GeneralError,
            )
        }
    }
}
