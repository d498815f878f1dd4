//! Frames from the wire into the relay's AF_XDP path: any bytes are read as an
//! Ethernet/IPv4/UDP frame or refused — never a panic, never a payload past the frame — and a
//! frame written back with the headers the relay builds reads back as what was written.
#![no_main]

use std::net::SocketAddrV4;

use libfuzzer_sys::fuzz_target;
use switchboard::rtp::relay::xdp::{HEADERS, parse_udp4, write_udp4};

fuzz_target!(|data: &[u8]| {
    let Some(h) = parse_udp4(data) else {
        return;
    };
    assert!(HEADERS + h.len <= data.len(), "payload past the frame");
    // Forward it as the relay does: same payload, headers towards a new peer.
    let mut frame = data.to_vec();
    let to = SocketAddrV4::new(*h.src.ip(), h.src.port().wrapping_add(1));
    let n = write_udp4(&mut frame, h.src_mac, [2; 6], h.dst, to, h.len).expect("room: it fit");
    let back = parse_udp4(&frame[..n]).expect("a frame the relay wrote reads back");
    assert_eq!((back.src, back.dst, back.len), (h.dst, to, h.len));
    assert_eq!(&frame[HEADERS..n], &data[HEADERS..HEADERS + h.len]);
});
