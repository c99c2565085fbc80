fn main() {
    // Only the Node.js addon needs napi's link setup; the plain-Rust core (cargo test) does not.
    if std::env::var_os("CARGO_FEATURE_NODE").is_some() {
        napi_build::setup();
    }
}
