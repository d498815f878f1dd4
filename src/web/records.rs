//! Records of the caller's tenant: call detail records (filtered, paged by cursor), where a
//! recording is, and agents' state history and totals. Clients read their CDRs; agents' history
//! needs the agent itself or a supervisor.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};

use crate::model::{ContactId, Timestamp};
use crate::store::{Cdr, CdrCursor, CdrFilter, Disposition};

use super::{ApiError, App, Caller, parse_instant, parse_query};

/// The window history and totals cover when `from` is not given: the last day.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Parameters of `GET /api/v1/cdrs`.
const CDR_PARAMETERS: &[&str] = &[
    "from",
    "to",
    "queue",
    "agent",
    "disposition",
    "limit",
    "after",
];

/// `GET /api/v1/cdrs?from=&to=&queue=&agent=&disposition=&limit=&after=`.
pub(crate) async fn cdrs(
    State(app): State<App>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let mut params = parse_query(query.as_deref(), CDR_PARAMETERS)?;
    let mut filter = CdrFilter::default();
    if let Some(from) = params.remove("from") {
        filter.from = Some(parse_instant("from", &from)?);
    }
    if let Some(to) = params.remove("to") {
        filter.to = Some(parse_instant("to", &to)?);
    }
    filter.queue = params.remove("queue");
    filter.agent = params.remove("agent");
    if let Some(disposition) = params.remove("disposition") {
        filter.disposition = Some(
            disposition
                .parse::<Disposition>()
                .map_err(|e| ApiError::BadRequest(format!("parameter disposition: {e}")))?,
        );
    }
    if let Some(limit) = params.remove("limit") {
        filter.limit = Some(limit.parse::<u32>().map_err(|_| {
            ApiError::BadRequest(format!(
                "parameter limit: {:?} is not a whole number from 1 to {}",
                limit.chars().take(32).collect::<String>(),
                crate::store::MAX_LIST_LIMIT
            ))
        })?);
    }
    if let Some(after) = params.remove("after") {
        filter.after = Some(
            after
                .parse::<CdrCursor>()
                .map_err(|e| ApiError::BadRequest(format!("parameter after: {e}")))?,
        );
    }
    let page = app.store.cdrs(caller.tenant(), &filter).await?;
    Ok(Json(json!({
        "cdrs": page.cdrs.iter().map(cdr_json).collect::<Vec<_>>(),
        "next": page.next.map(|c| c.to_string()),
    })))
}

/// `GET /api/v1/cdrs/{contact}`.
pub(crate) async fn cdr(
    State(app): State<App>,
    caller: Caller,
    Path(contact): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(cdr_json(&own_cdr(&app, &caller, contact).await?)))
}

/// `GET /api/v1/cdrs/{contact}/recording`: where the media handler stored the recording.
pub(crate) async fn recording(
    State(app): State<App>,
    caller: Caller,
    Path(contact): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let cdr = own_cdr(&app, &caller, contact).await?;
    let record = &cdr.record;
    let Some(path) = &record.recording else {
        return Err(ApiError::NotFound(format!(
            "contact {contact} has no recording"
        )));
    };
    Ok(Json(json!({
        "contact": contact,
        "path": path,
        "handler": record.handler.map(|h| h.0),
        "note": "the file lives on the media handler that recorded the call, at this path; \
                 Switchboard does not hold or serve it",
    })))
}

async fn own_cdr(app: &App, caller: &Caller, contact: u64) -> Result<Cdr, ApiError> {
    app.store
        .cdr(caller.tenant(), ContactId(contact))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no call detail record for contact {contact}")))
}

fn cdr_json(cdr: &Cdr) -> Value {
    let r = &cdr.record;
    json!({
        "id": cdr.id.0,
        "contact": r.contact.0,
        "media": r.media.code(),
        "queue": r.queue,
        "caller": r.caller,
        "called": r.called,
        "agent": r.agent,
        "handler": r.handler.map(|h| h.0),
        "arrived_at_us": r.arrived_at.0,
        "answered_at_us": r.answered_at.map(|t| t.0),
        "ended_at_us": r.ended_at.0,
        "wait_ms": r.wait_ms,
        "talk_ms": r.talk_ms,
        "wrap_up_ms": r.wrap_up_ms,
        "has_recording": r.recording.is_some(),
        "disposition": r.disposition.code(),
        "cause": r.cause,
        "attributes": r.attributes,
    })
}

/// `from` and `to` of a history query: `to` defaults to now, `from` to a day before `to`.
fn window(query: Option<&str>) -> Result<(Timestamp, Timestamp), ApiError> {
    let params = parse_query(query, &["from", "to"])?;
    let to = match params.get("to") {
        Some(to) => parse_instant("to", to)?,
        None => Timestamp::now(),
    };
    let from = match params.get("from") {
        Some(from) => parse_instant("from", from)?,
        None => to.minus(DEFAULT_WINDOW),
    };
    if from > to {
        return Err(ApiError::BadRequest(
            "parameter from: after parameter to".to_owned(),
        ));
    }
    Ok((from, to))
}

/// `GET /api/v1/agents/{name}/history?from=&to=`: the agent's state changes, oldest first.
pub(crate) async fn agent_history(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require_agent(&name)?;
    app.own_agent(&caller, &name)?;
    let (from, to) = window(query.as_deref())?;
    let changes = app
        .store
        .agent_states(
            caller.tenant(),
            &name,
            from,
            to,
            Some(crate::store::MAX_LIST_LIMIT),
        )
        .await?;
    let changes: Vec<Value> = changes
        .iter()
        .map(|c| json!({ "state": c.state.code(), "reason": c.reason, "at_us": c.at.0 }))
        .collect();
    Ok(Json(json!({
        "agent": name,
        "from_us": from.0,
        "to_us": to.0,
        "changes": changes,
    })))
}

/// `GET /api/v1/agents/{name}/totals?from=&to=`: milliseconds the agent spent in each state.
pub(crate) async fn agent_totals(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require_agent(&name)?;
    app.own_agent(&caller, &name)?;
    let (from, to) = window(query.as_deref())?;
    let totals = app
        .store
        .agent_state_totals(caller.tenant(), from, to)
        .await?;
    let mine = totals.into_iter().find(|t| t.agent == name);
    let per_state: serde_json::Map<String, Value> = crate::agents::AgentState::ALL
        .into_iter()
        .map(|state| {
            let ms = mine.as_ref().map_or(0, |t| t.get(state).as_millis());
            (
                state.code().to_owned(),
                json!(u64::try_from(ms).unwrap_or(u64::MAX)),
            )
        })
        .collect();
    Ok(Json(json!({
        "agent": name,
        "from_us": from.0,
        "to_us": to.0,
        "ms": per_state,
    })))
}
