//! The emulator speaks ARI's wire format byte for byte where the fixtures show it: reason
//! phrases, header spellings (`Content-type`), `Server`, `Cache-Control`, 401 with
//! `WWW-Authenticate`, 204 without a content type, 405 with `Allow`, the 400 HTML page of a
//! WebSocket without `app`. Read over a raw TCP socket, so nothing normalises it first.

use std::net::SocketAddr;
use std::time::Duration;

use switchboard::emulator::asterisk::{Emulator, EmulatorOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start() -> Emulator {
    let mut options = EmulatorOptions::capture("secret");
    options.time_scale = 0.01;
    Emulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), options)
        .await
        .expect("emulator starts")
}

/// Sends one raw request and returns the raw response head and body.
async fn raw(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_owned(), body.to_owned())
}

fn get(path: &str, auth: bool) -> String {
    let auth = if auth {
        "Authorization: Basic Y2M6c2VjcmV0\r\n"
    } else {
        ""
    };
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")
}

#[tokio::test]
async fn json_replies_spell_content_type_as_asterisk_does() {
    let emu = start().await;
    let (head, body) = raw(emu.local_addr(), &get("/ari/asterisk/ping", true)).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let names: Vec<&str> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n))
        .filter(|n| *n != "Connection")
        .collect();
    assert_eq!(
        names,
        [
            "Server",
            "Date",
            "Cache-Control",
            "Content-type",
            "Content-Length"
        ],
        "{head}"
    );
    assert!(head.contains("Server: Asterisk/22.10.1\r\n"));
    assert!(head.contains("Cache-Control: no-cache, no-store\r\n"));
    assert!(body.contains("\"ping\":\"pong\""));
    emu.shutdown().await;
}

#[tokio::test]
async fn errors_carry_asterisk_reason_phrases() {
    let emu = start().await;
    let (head, body) = raw(emu.local_addr(), &get("/ari/bridges/nope", true)).await;
    assert!(
        head.starts_with("HTTP/1.1 404 Not found\r\n"),
        "bridge 404 is 'Not found': {head}"
    );
    assert_eq!(body, r#"{"message":"Bridge not found"}"#);
    let (head, _) = raw(emu.local_addr(), &get("/ari/channels/nope", true)).await;
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    let (head, body) = raw(emu.local_addr(), &get("/ari/nosuchresource", true)).await;
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"));
    assert_eq!(body, r#"{"message":"Resource not found"}"#);
    let put = "PUT /ari/channels HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Y2M6c2VjcmV0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (head, body) = raw(emu.local_addr(), put).await;
    assert!(
        head.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{head}"
    );
    assert!(head.contains("Allow: OPTIONS,GET,POST\r\n"), "{head}");
    assert_eq!(body, r#"{"message":"Invalid method"}"#);
    let post = "POST /ari/bridges?type=nosuchtype HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Y2M6c2VjcmV0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (head, _) = raw(emu.local_addr(), post).await;
    assert!(
        head.starts_with("HTTP/1.1 500 Internal Error\r\n"),
        "{head}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn unauthenticated_requests_get_401_with_a_basic_challenge() {
    let emu = start().await;
    let (head, body) = raw(emu.local_addr(), &get("/ari/channels", false)).await;
    assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
    assert!(
        head.contains("WWW-Authenticate: Basic realm=\"Asterisk REST Interface\"\r\n"),
        "{head}"
    );
    assert_eq!(body, r#"{"message":"Authentication required"}"#);
    let (head, _) = raw(
        emu.local_addr(),
        &get("/ari/channels?api_key=cc:secret", false),
    )
    .await;
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n"),
        "api_key works: {head}"
    );
    let (head, _) = raw(
        emu.local_addr(),
        &get("/ari/channels?api_key=cc:wrong", false),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    emu.shutdown().await;
}

#[tokio::test]
async fn no_content_has_no_content_type_and_an_empty_body() {
    let emu = start().await;
    let post = "POST /ari/bridges?bridgeId=b1 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Y2M6c2VjcmV0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (head, _) = raw(emu.local_addr(), post).await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let del = "DELETE /ari/bridges/b1 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Y2M6c2VjcmV0\r\nConnection: close\r\n\r\n";
    let (head, body) = raw(emu.local_addr(), del).await;
    assert!(head.starts_with("HTTP/1.1 204 No Content\r\n"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("content-type"),
        "{head}"
    );
    assert!(body.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn an_events_socket_without_app_is_a_400_html_page() {
    let emu = start().await;
    let req = "GET /ari/events?app=&api_key=cc:secret HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let (head, body) = raw(emu.local_addr(), req).await;
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(head.contains("Content-type: text/html\r\n"), "{head}");
    assert!(
        body.contains("HTTP request is missing param: [app]"),
        "{body}"
    );
    let req = "GET /ari/events?app=cc&api_key=cc:wrong HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let (head, _) = raw(emu.local_addr(), req).await;
    assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
    emu.shutdown().await;
}
