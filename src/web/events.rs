//! An agent's live notices (screen pops) as server-sent events: `offered`, `connected`,
//! `withdrawn`, `ended`, each with the contact, queue and caller; `lagged` when the reader fell
//! so far behind that notices were dropped; a keep-alive comment every 15 seconds.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::controller::telephony::AgentNotice;

use super::{ApiError, App, Caller};

/// How often an idle stream sends a keep-alive comment (proxies drop silent connections).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /api/v1/agents/{name}/events`: the agent's notices from now on.
pub(crate) async fn agent_events(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require_agent(&name)?;
    app.own_agent(&caller, &name)?;
    let Some(notices) = app.controller.notices() else {
        return Err(ApiError::NotFound(
            "no live events: this controller runs without the calls side (no media handlers)"
                .to_owned(),
        ));
    };
    let stream = futures_util::stream::unfold((notices, name), |(mut notices, name)| async move {
        loop {
            match notices.recv().await {
                Ok(notice) if notice.agent == name => {
                    let event = render(&notice);
                    return Some((Ok(event), (notices, name)));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    let event = Event::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{missed}}}"));
                    return Some((Ok(event), (notices, name)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// One notice as an SSE event named after it, with the notice as JSON data.
fn render(notice: &AgentNotice) -> Event {
    let event = Event::default().event(notice.event);
    match serde_json::to_string(notice) {
        Ok(data) => event.data(data),
        // Serialising plain strings and numbers cannot fail; an empty event is still an event.
        Err(_) => event,
    }
}
