//! Bytes from an ESL socket, arriving in any pieces: the frame decoder (client side) and the
//! command decoder (server side) never panic, never buffer more than the configured frame
//! limit, and whatever they accept can be asked for its parts (events in all three formats,
//! replies, notices, log records, commands) without a panic. Memory stays within a fixed
//! multiple of the limit, whatever the input's size.
//!
//!   cargo +nightly fuzz run esl_frames -- -max_total_time=300
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use libfuzzer_sys::fuzz_target;
use switchboard::media::freeswitch::codec::{CommandDecoder, Decoder, Limits};

/// Counts the bytes alive, and the peak, so that the target can check the decoders' memory.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live =
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same pointer and layout, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let delta = new_size as isize - layout.size() as isize;
        // Count the old and the new block as both alive during the move.
        let live = LIVE.fetch_add(new_size as isize, Ordering::Relaxed) + new_size as isize;
        PEAK.fetch_max(live, Ordering::Relaxed);
        LIVE.fetch_sub(new_size as isize - delta, Ordering::Relaxed);
        // SAFETY: same pointer and layout, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    // The first bytes choose the limits and how the rest is cut into reads.
    let limits = Limits::new(
        64 + usize::from(data[0]) * 8,
        64 + usize::from(data[1]) * 32,
    );
    let mut seed = u32::from(data[2]) | 1;
    let input = &data[3..];

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);

    let mut frames = Decoder::new(limits);
    let mut commands = CommandDecoder::new(limits);
    let mut rest = input;
    while !rest.is_empty() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let read = 1 + (seed >> 16) as usize % 512;
        let piece = &rest[..read.min(rest.len())];
        rest = &rest[piece.len()..];

        let mut left = piece;
        while !left.is_empty() {
            let n = frames.feed(left);
            left = &left[n..];
            assert!(
                frames.buffered() <= limits.max_frame(),
                "frame buffer over the limit"
            );
            loop {
                match frames.decode() {
                    Ok(Some(frame)) => {
                        assert!(frame.as_bytes().len() <= limits.max_frame());
                        if let Ok(event) = frame.event() {
                            let _ = (event.name(), event.subclass(), event.unique_id());
                            for (name, value) in event.headers() {
                                let _ = (name.len(), value.len());
                            }
                            let _ = event.to_owned_event();
                        }
                        let _ = (
                            frame.reply(),
                            frame.job_uuid(),
                            frame.disconnect_notice(),
                            frame.log(),
                        );
                        if let Some(Ok(channel)) = frame.channel_data() {
                            let _ = channel.headers().count();
                        }
                    }
                    Ok(None) => break,
                    Err(_) => assert!(frames.resync(), "an error leaves the decoder failed"),
                }
            }
        }

        let mut left = piece;
        while !left.is_empty() {
            let n = commands.feed(left);
            left = &left[n..];
            assert!(
                commands.buffered() <= limits.max_frame(),
                "command buffer over the limit"
            );
            loop {
                match commands.decode() {
                    Ok(Some(frame)) => {
                        if let Ok(command) = frame.command() {
                            let _ = command.to_bytes();
                        }
                    }
                    Ok(None) => break,
                    Err(_) => assert!(commands.resync()),
                }
            }
        }
    }
    drop((frames, commands));

    // Two buffers of at most max_frame (each may double while growing), frames, and the
    // transient index of one event (a JSON event's entries take up to ~10x its bytes).
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let bound = 24 * limits.max_frame() as isize + 64 * 1024;
    assert!(
        peak <= bound,
        "peak {peak} bytes over {bound} for limits {limits:?}"
    );
});
