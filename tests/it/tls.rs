//! HTTPS upstreams: kt's TCP layer under ureq's rustls, checked against the mock upstream
//! served over TLS, whose CA kt trusts through `SSL_CERT_FILE`.

use serde_json::json;

use crate::gateway::config_for;
use crate::support::*;
use crate::transport::{answering, calls_and_streams};

/// An HTTPS mock upstream: a chat completion, or an SSE stream when the body asks for one.
fn tls_upstream() -> MockUpstream {
    MockUpstream::start_tls(answering("over tls", ["se", "cure"]))
}

#[test]
fn an_https_upstream_is_called_over_tls_streamed_and_its_connection_reused() {
    let up = tls_upstream();
    let ca = test_ca_file();
    let gw = Gateway::start_with(
        Some(&config_for(&up.v1(), "")),
        &[],
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    calls_and_streams(&gw, "over tls", "secure");
    assert_eq!(up.count(), 4);
    // Two TLS handshakes, one per kind of call: calls and streams have an agent (and a
    // connection pool) each, as their timeouts differ (transport::Agents); each pooled
    // connection carried both calls of its kind.
    assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn an_untrusted_upstream_certificate_is_a_502_not_a_silent_call() {
    let up = tls_upstream();
    // The bundled roots do not know the test CA.
    let gw = Gateway::start(Some(&config_for(&up.v1(), "")));
    let (status, _, body) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    );
    assert_eq!(status, 502, "{body}");
    assert_eq!(up.count(), 0);
}

#[test]
fn an_unusable_ssl_cert_file_stops_the_gateway_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("roots.txt");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    for (file, why) in [
        (dir.path().join("missing.pem"), "cannot read it"),
        (not_pem, "no certificate in it"),
    ] {
        let out = kt(dir.path())
            .args(["gateway", "run", "--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("kt.db"))
            .env("SSL_CERT_FILE", &file)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("SSL_CERT_FILE=") && err.contains(why), "{err}");
        assert!(err.contains("unset it"), "{err}");
    }
}
