//! The emulators' clock: timers their sans-IO worlds ask for, fired when due.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use tokio::sync::mpsc;
use tokio::time::Instant;

/// Fires each `(when, timer)` received on `rx` at its time, in time order (ties in the order
/// they were asked for), until every sender is gone.
pub(crate) async fn run_timers<T>(
    mut rx: mpsc::UnboundedReceiver<(Instant, T)>,
    mut fire: impl FnMut(T),
) {
    let mut heap: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut pending: HashMap<u64, T> = HashMap::new();
    let mut seq = 0u64;
    loop {
        let next = heap.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            item = rx.recv() => match item {
                Some((at, timer)) => {
                    seq += 1;
                    heap.push(Reverse((at, seq)));
                    pending.insert(seq, timer);
                }
                None => return,
            },
            _ = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending::<()>().await,
                }
            } => {
                let now = Instant::now();
                while let Some(Reverse((at, id))) = heap.peek().copied() {
                    if at > now {
                        break;
                    }
                    heap.pop();
                    if let Some(timer) = pending.remove(&id) {
                        fire(timer);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn timers_fire_in_time_order_whatever_order_they_were_asked_in() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (fired_tx, mut fired) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_timers(rx, move |t: &'static str| {
            let _ = fired_tx.send((t, Instant::now()));
        }));
        let start = Instant::now();
        for (ms, name) in [
            (30, "third"),
            (10, "first"),
            (20, "second"),
            (20, "second-too"),
        ] {
            tx.send((start + Duration::from_millis(ms), name))
                .expect("running");
        }
        let mut seen = Vec::new();
        for due in [10, 20, 20, 30] {
            let (name, at) = fired.recv().await.expect("fires");
            assert!(
                at - start >= Duration::from_millis(due),
                "{name} fired early"
            );
            seen.push(name);
        }
        assert_eq!(seen, ["first", "second", "second-too", "third"]);
        drop(tx);
        task.await.expect("ends when the senders are gone");
    }
}
