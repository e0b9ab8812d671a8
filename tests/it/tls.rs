//! HTTPS upstreams: kt's TCP layer under ureq's rustls, checked against a local TLS
//! mock whose CA kt trusts through `SSL_CERT_FILE`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::gateway::{chunk, completion, config_for};
use crate::support::*;

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/tls")
        .join(name)
}

/// A TLS server configuration with the test certificate for `localhost` (testdata/tls).
pub fn server_config() -> Arc<rustls::ServerConfig> {
    let pem = |name| std::fs::read(tls_file(name)).unwrap();
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem("localhost.pem")) {
        if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
            certs.push(rustls::pki_types::CertificateDer::from(c.der().to_vec()));
        }
    }
    let key = ureq::tls::parse_pem(&pem("localhost.key"))
        .find_map(|item| match item {
            Ok(ureq::tls::PemItem::PrivateKey(k)) => Some(k.der().to_vec()),
            _ => None,
        })
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

/// The test CA's file, for `SSL_CERT_FILE`.
pub fn ca_file() -> PathBuf {
    tls_file("ca.pem")
}

/// An HTTPS mock upstream on 127.0.0.1 (certificate for `localhost`): a chat completion,
/// or an SSE stream when the body asks for one. Counts connections and requests.
struct TlsUpstream {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl TlsUpstream {
    fn start() -> TlsUpstream {
        let config = server_config();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (conns, reqs) = (connections.clone(), requests.clone());
        std::thread::spawn(move || {
            for tcp in listener.incoming().map_while(Result::ok) {
                conns.fetch_add(1, Ordering::SeqCst);
                let (config, reqs) = (config.clone(), reqs.clone());
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    serve(rustls::StreamOwned::new(conn, tcp), &reqs);
                });
            }
        });
        TlsUpstream {
            port,
            connections,
            requests,
        }
    }

    fn v1(&self) -> String {
        format!("https://localhost:{}/v1", self.port)
    }
}

/// Keep-alive HTTP/1.1 over the TLS stream until the client closes.
fn serve(stream: impl Read + Write, requests: &AtomicUsize) {
    let mut r = BufReader::new(stream);
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let req: Value = serde_json::from_slice(&body).unwrap();
        let w = r.get_mut();
        let ok = if req["stream"] == true {
            let mut out = String::from(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            for ev in [
                chunk(json!({"role": "assistant", "content": "se"}), None),
                chunk(json!({"content": "cure"}), None),
                chunk(json!({}), Some("stop")),
            ] {
                let data = format!("data: {ev}\n\n");
                out.push_str(&format!("{:x}\r\n{data}\r\n", data.len()));
            }
            out.push_str("e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n");
            w.write_all(out.as_bytes())
        } else {
            let body = completion("over tls").to_string();
            w.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
        };
        if ok.and_then(|()| w.flush()).is_err() {
            return;
        }
    }
}

#[test]
fn an_https_upstream_is_called_over_tls_streamed_and_its_connection_reused() {
    let up = TlsUpstream::start();
    let ca = tls_file("ca.pem");
    let gw = Gateway::start_with(
        Some(&config_for(&up.v1(), "")),
        &[],
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    let url = format!("{}/chat/completions", gw.base_url());
    let user = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    for i in 0..4 {
        if i % 2 == 0 {
            let (status, _, body) = post_json(&url, &user, &[]);
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["choices"][0]["message"]["content"], "over tls");
        } else {
            let mut req = user.clone();
            req["stream"] = json!(true);
            let (status, events) = post_stream(&url, &req);
            assert_eq!(status, 200);
            let text: String = events
                .iter()
                .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
                .filter_map(|v| {
                    v["choices"][0]["delta"]["content"]
                        .as_str()
                        .map(str::to_string)
                })
                .collect();
            assert_eq!(text, "secure");
            assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
        }
    }
    assert_eq!(up.requests.load(Ordering::SeqCst), 4);
    // One TLS handshake: the pooled connection carried every request.
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn an_untrusted_upstream_certificate_is_a_502_not_a_silent_call() {
    let up = TlsUpstream::start();
    // The bundled roots do not know the test CA.
    let gw = Gateway::start(Some(&config_for(&up.v1(), "")));
    let (status, _, body) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    );
    assert_eq!(status, 502, "{body}");
    assert_eq!(up.requests.load(Ordering::SeqCst), 0);
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
