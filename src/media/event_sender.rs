//! One handler's way into the controller's event queue, in the handler's own order.
//!
//! A handler emits from two places: its reader task, which may wait for room in the queue
//! (backpressure), and the futures of commands, which must not wait (the controller may be
//! the one awaiting the command, so waiting for room could deadlock). When the queue is full,
//! a command's events are set aside and a task feeds them in as room appears. Until that task
//! is done every later event, from either place, goes behind them: the controller never sees
//! a leg's hangup before the answer a command reported earlier.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, mpsc};

use crate::model::Timestamp;

use super::{HandlerEvent, HandlerId, MediaEvent};

/// Sends one handler's events to the controller, keeping their order (see the module docs).
#[derive(Debug, Clone)]
pub struct EventSender {
    handler: HandlerId,
    tx: mpsc::Sender<HandlerEvent>,
    spill: Arc<Spill>,
}

/// Events set aside while the queue was full, and whether a task is feeding them in.
#[derive(Debug, Default)]
struct Spill {
    state: Mutex<SpillState>,
    drained: Notify,
}

#[derive(Debug, Default)]
struct SpillState {
    /// Waiting, oldest first. Only commands' events land here, a few per command, so its
    /// length is bounded by the commands in flight.
    queue: VecDeque<HandlerEvent>,
    /// A task owns the queue (it may hold a popped event it has not sent yet).
    draining: bool,
}

impl Spill {
    fn state(&self) -> MutexGuard<'_, SpillState> {
        // The state is plain data: a panic elsewhere must not stop the events.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl EventSender {
    /// A sender for `handler` into the controller's queue.
    pub fn new(handler: HandlerId, tx: mpsc::Sender<HandlerEvent>) -> Self {
        EventSender {
            handler,
            tx,
            spill: Arc::default(),
        }
    }

    fn stamp(&self, event: MediaEvent) -> HandlerEvent {
        HandlerEvent {
            handler: self.handler,
            at: Timestamp::now(),
            event,
        }
    }

    /// Emits without waiting (from a command's future): what does not fit now is fed in by a
    /// task, in order, never dropped. Needs a tokio runtime when the queue is full.
    pub fn emit_nowait(&self, events: impl IntoIterator<Item = MediaEvent>) {
        let mut events = events.into_iter().map(|e| self.stamp(e));
        let mut state = self.spill.state();
        if !state.draining {
            for event in events.by_ref() {
                match self.tx.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                    Err(mpsc::error::TrySendError::Full(event)) => {
                        state.queue.push_back(event);
                        break;
                    }
                }
            }
            if state.queue.is_empty() {
                return;
            }
            state.draining = true;
            tokio::spawn(self.clone().drain());
        }
        state.queue.extend(events);
    }

    /// Feeds the set-aside events in as room appears, then lets direct sends resume.
    async fn drain(self) {
        loop {
            let next = {
                let mut state = self.spill.state();
                match state.queue.pop_front() {
                    Some(event) => event,
                    None => {
                        state.draining = false;
                        drop(state);
                        self.spill.drained.notify_waiters();
                        return;
                    }
                }
            };
            if self.tx.send(next).await.is_err() {
                let mut state = self.spill.state();
                state.queue.clear();
                state.draining = false;
                drop(state);
                self.spill.drained.notify_waiters();
                return;
            }
        }
    }

    /// Emits, waiting for room (backpressure) and behind any events set aside earlier;
    /// `false` once the controller is gone.
    pub async fn emit(&self, events: impl IntoIterator<Item = MediaEvent>) -> bool {
        loop {
            // Created before the check, so a drain finishing in between still wakes it.
            let drained = self.spill.drained.notified();
            if !self.spill.state().draining {
                break;
            }
            drained.await;
        }
        for event in events {
            if self.tx.send(self.stamp(event)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// The controller has stopped reading.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{HangupCause, LegId};

    fn answered(n: usize) -> MediaEvent {
        MediaEvent::Answered {
            leg: LegId::new(format!("leg-{n}")),
        }
    }

    fn leg_of(e: &HandlerEvent) -> String {
        match &e.event {
            MediaEvent::Answered { leg } => leg.to_string(),
            MediaEvent::HungUp { leg, .. } => format!("hangup {leg}"),
            other => format!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn events_set_aside_on_a_full_queue_stay_ahead_of_later_ones() {
        let (tx, mut rx) = mpsc::channel(2);
        let sender = EventSender::new(HandlerId(1), tx);
        // A command reports four answers into a queue with room for two.
        sender.emit_nowait((0..4).map(answered));
        // The reader then reports a hangup: it must come after all four.
        let reader = sender.clone();
        let late = tokio::spawn(async move {
            reader
                .emit([MediaEvent::HungUp {
                    leg: LegId::new("leg-0"),
                    cause: HangupCause::normal_clearing(),
                }])
                .await
        });
        // And another command reports one more answer while the first are still waiting.
        sender.emit_nowait([answered(4)]);
        let mut seen = Vec::new();
        for _ in 0..6 {
            let e = rx.recv().await.expect("an event");
            seen.push(leg_of(&e));
        }
        assert!(late.await.expect("joins"));
        assert_eq!(&seen[..5], ["leg-0", "leg-1", "leg-2", "leg-3", "leg-4"]);
        assert_eq!(seen[5], "hangup leg-0");
    }

    #[tokio::test]
    async fn with_room_events_go_straight_in() {
        let (tx, mut rx) = mpsc::channel(8);
        let sender = EventSender::new(HandlerId(7), tx);
        sender.emit_nowait([answered(1)]);
        assert!(sender.emit([answered(2)]).await);
        let first = rx.try_recv().expect("sent at once");
        assert_eq!(first.handler, HandlerId(7));
        assert_eq!(leg_of(&first), "leg-1");
        assert_eq!(leg_of(&rx.try_recv().expect("sent at once")), "leg-2");
    }

    #[tokio::test]
    async fn a_stopped_controller_ends_emits_without_hanging() {
        let (tx, rx) = mpsc::channel(1);
        let sender = EventSender::new(HandlerId(1), tx);
        sender.emit_nowait((0..3).map(answered));
        drop(rx);
        assert!(!sender.emit([answered(9)]).await);
        assert!(sender.is_closed());
    }
}
