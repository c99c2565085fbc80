//! `msr_firebase::Error` -> napi error. Async functions can only carry napi's own status, so the stable
//! code travels in the message, separated by U+001F; `lib/native.js` splits it back out.

pub(crate) const SEP: char = '\u{1f}';

pub(crate) fn to_napi(e: msr_firebase::Error) -> napi::Error {
    napi::Error::new(
        napi::Status::GenericFailure,
        format!(
            "{}{SEP}{}",
            e.code.as_str(),
            msr_firebase::redact::secrets(&e.message)
        ),
    )
}

pub(crate) trait IntoNapi<T> {
    fn napi(self) -> napi::Result<T>;
}

impl<T> IntoNapi<T> for msr_firebase::Result<T> {
    fn napi(self) -> napi::Result<T> {
        self.map_err(to_napi)
    }
}
