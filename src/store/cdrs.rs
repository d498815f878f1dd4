//! Call detail records: one per contact, written when it ends, listed per tenant.
//!
//! Every statement here runs unchanged on SQLite and PostgreSQL. Optional filters are bound as
//! NULL and tested in SQL (`$n IS NULL OR …`), so each query is one fixed statement.

use sqlx::FromRow;

use crate::media::HandlerId;
use crate::model::{ContactId, MediaType, Timestamp};

use super::records::{Cdr, CdrFilter, CdrId, CdrPage, Disposition, NewCdr};
use super::{Store, StoreError, on_pool, validate};

/// The columns of `cdrs`, in [`CdrRow`]'s order.
macro_rules! cdr_columns {
    () => {
        "id, tenant, contact_id, media, queue, caller, called, agent, handler, arrived_at, \
         answered_at, ended_at, wait_ms, talk_ms, wrap_up_ms, recording, disposition, cause, \
         attributes"
    };
}

/// Writes a CDR unless its contact has one; no row comes back then.
const INSERT_CDR: &str = "\
    INSERT INTO cdrs (tenant, contact_id, media, queue, caller, called, agent, handler, \
                      arrived_at, answered_at, ended_at, wait_ms, talk_ms, wrap_up_ms, \
                      recording, disposition, cause, attributes) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
    ON CONFLICT (contact_id) DO NOTHING \
    RETURNING id";

/// A tenant's CDRs in (ended_at, id) order, each filter applying when its bind is not NULL.
const LIST_CDRS: &str = concat!(
    "SELECT ",
    cdr_columns!(),
    " FROM cdrs \
      WHERE tenant = $1 \
        AND ($2 IS NULL OR ended_at >= $2) \
        AND ($3 IS NULL OR ended_at < $3) \
        AND ($4 IS NULL OR queue = $4) \
        AND ($5 IS NULL OR agent = $5) \
        AND ($6 IS NULL OR disposition = $6) \
        AND ($7 IS NULL OR ended_at > $7 OR (ended_at = $7 AND id > $8)) \
      ORDER BY ended_at, id \
      LIMIT $9"
);

const CDR_OF_CONTACT: &str = concat!(
    "SELECT ",
    cdr_columns!(),
    " FROM cdrs WHERE tenant = $1 AND contact_id = $2"
);

/// A `cdrs` row as the driver reads it.
#[derive(FromRow)]
struct CdrRow {
    id: i64,
    tenant: String,
    contact_id: i64,
    media: String,
    queue: String,
    caller: String,
    called: String,
    agent: Option<String>,
    handler: Option<i64>,
    arrived_at: i64,
    answered_at: Option<i64>,
    ended_at: i64,
    wait_ms: i64,
    talk_ms: i64,
    wrap_up_ms: i64,
    recording: Option<String>,
    disposition: String,
    cause: Option<String>,
    attributes: String,
}

/// What a CDR's row needs beyond its fields: checked and converted once.
struct CdrParams {
    contact: i64,
    attributes: String,
}

impl CdrParams {
    fn of(cdr: &NewCdr) -> Result<CdrParams, StoreError> {
        validate::new_cdr(cdr)?;
        let contact = i64::try_from(cdr.contact.0).map_err(|_| {
            StoreError::invalid(
                "contact",
                format!("{} is beyond the ids the store assigns", cdr.contact),
            )
        })?;
        let attributes = serde_json::to_string(&cdr.attributes)
            .map_err(|e| StoreError::invalid("attributes", e.to_string()))?;
        Ok(CdrParams {
            contact,
            attributes,
        })
    }
}

/// Binds [`INSERT_CDR`]'s parameters (a macro: the query's type differs per database).
macro_rules! bind_cdr {
    ($query:expr, $cdr:expr, $row:expr) => {{
        let (cdr, row): (&NewCdr, &CdrParams) = ($cdr, $row);
        // Validated to fit; the fallback is never taken.
        let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        $query
            .bind(&cdr.tenant)
            .bind(row.contact)
            .bind(cdr.media.code())
            .bind(&cdr.queue)
            .bind(&cdr.caller)
            .bind(&cdr.called)
            .bind(&cdr.agent)
            .bind(cdr.handler.map(|h| i64::from(h.0)))
            .bind(cdr.arrived_at.0)
            .bind(cdr.answered_at.map(|t| t.0))
            .bind(cdr.ended_at.0)
            .bind(ms(cdr.wait_ms))
            .bind(ms(cdr.talk_ms))
            .bind(ms(cdr.wrap_up_ms))
            .bind(&cdr.recording)
            .bind(cdr.disposition.code())
            .bind(&cdr.cause)
            .bind(row.attributes.as_str())
    }};
}

/// The answer to one insert: its id, or the record the contact already had.
fn inserted(cdr: &NewCdr, id: Option<i64>) -> Result<CdrId, StoreError> {
    match id {
        Some(id) => cdr_id(id),
        None => Err(StoreError::DuplicateCdr {
            contact: cdr.contact,
        }),
    }
}

impl Store {
    /// Writes the call detail record of a contact that ended; returns its id.
    ///
    /// One per contact: a second write for the same contact (by any tenant) is refused with
    /// [`StoreError::DuplicateCdr`] and changes nothing, so a controller replaying its work after
    /// a restart can treat that error as "already done".
    pub async fn insert_cdr(&self, cdr: &NewCdr) -> Result<CdrId, StoreError> {
        let row = CdrParams::of(cdr)?;
        let failed = |e| {
            StoreError::database(
                format!(
                    "writing the CDR of {} for tenant {:?}",
                    cdr.contact, cdr.tenant
                ),
                e,
            )
        };
        let id: Option<i64> = on_pool!(self, |pool| {
            bind_cdr!(sqlx::query_scalar(INSERT_CDR), cdr, &row)
                .fetch_optional(pool)
                .await
                .map_err(failed)?
        });
        inserted(cdr, id)
    }

    /// Writes several CDRs in one transaction (one disk sync for all): each answer says what
    /// became of the record at the same index, as [`insert_cdr`](Self::insert_cdr) would. An
    /// invalid or duplicate record does not stop the others; a database failure writes none
    /// and is the outer error.
    pub async fn insert_cdrs(
        &self,
        cdrs: &[NewCdr],
    ) -> Result<Vec<Result<CdrId, StoreError>>, StoreError> {
        let rows: Vec<Result<CdrParams, StoreError>> = cdrs.iter().map(CdrParams::of).collect();
        if rows.iter().all(Result::is_err) {
            return Ok(rows.into_iter().filter_map(Result::err).map(Err).collect());
        }
        let failed = |e| StoreError::database(format!("writing a batch of {} CDRs", cdrs.len()), e);
        let mut ids: Vec<Option<Option<i64>>> = Vec::with_capacity(cdrs.len());
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(failed)?;
            for (cdr, row) in cdrs.iter().zip(&rows) {
                let id = match row {
                    Ok(row) => Some(
                        bind_cdr!(sqlx::query_scalar(INSERT_CDR), cdr, row)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(failed)?,
                    ),
                    Err(_) => None,
                };
                ids.push(id);
            }
            tx.commit().await.map_err(failed)?;
        });
        Ok(cdrs
            .iter()
            .zip(rows)
            .zip(ids)
            .map(|((cdr, row), id)| match (row, id) {
                (Err(invalid), _) => Err(invalid),
                (Ok(_), id) => inserted(cdr, id.flatten()),
            })
            .collect())
    }

    /// A page of `tenant`'s CDRs that match `filter`, ordered by end time then id.
    ///
    /// `filter.from` (inclusive) and `filter.to` (exclusive) bound the end time; `from` after
    /// `to` is refused. `filter.limit` is 1 to [`MAX_LIST_LIMIT`](super::MAX_LIST_LIMIT) (default
    /// [`DEFAULT_LIST_LIMIT`](super::DEFAULT_LIST_LIMIT)); larger limits are refused. Pass the
    /// page's `next` as `filter.after` to continue.
    pub async fn cdrs(&self, tenant: &str, filter: &CdrFilter) -> Result<CdrPage, StoreError> {
        validate::name("tenant", tenant)?;
        if let Some(queue) = &filter.queue {
            validate::name("filter.queue", queue)?;
        }
        if let Some(agent) = &filter.agent {
            validate::name("filter.agent", agent)?;
        }
        if let (Some(from), Some(to)) = (filter.from, filter.to) {
            validate::window("filter.from", from, to)?;
        }
        let limit = validate::limit("filter.limit", filter.limit)?;
        let after = filter.after.map(|c| {
            // An id beyond i64 is after every stored one: nothing follows it at that instant.
            (c.ended_at.0, i64::try_from(c.id.0).unwrap_or(i64::MAX))
        });
        let rows: Vec<CdrRow> = on_pool!(self, |pool| {
            sqlx::query_as(LIST_CDRS)
                .bind(tenant)
                .bind(filter.from.map(|t| t.0))
                .bind(filter.to.map(|t| t.0))
                .bind(&filter.queue)
                .bind(&filter.agent)
                .bind(filter.disposition.map(Disposition::code))
                .bind(after.map(|(ended, _)| ended))
                .bind(after.map(|(_, id)| id))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(|e| {
                    StoreError::database(format!("listing the CDRs of tenant {tenant:?}"), e)
                })?
        });
        let cdrs = rows
            .into_iter()
            .map(CdrRow::into_cdr)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if cdrs.len() == limit as usize {
            cdrs.last().map(Cdr::cursor)
        } else {
            None
        };
        Ok(CdrPage { cdrs, next })
    }

    /// The CDR of `contact`, if `tenant` has one for it (another tenant's is not found).
    pub async fn cdr(&self, tenant: &str, contact: ContactId) -> Result<Option<Cdr>, StoreError> {
        validate::name("tenant", tenant)?;
        let Ok(key) = i64::try_from(contact.0) else {
            return Ok(None);
        };
        let row: Option<CdrRow> = on_pool!(self, |pool| {
            sqlx::query_as(CDR_OF_CONTACT)
                .bind(tenant)
                .bind(key)
                .fetch_optional(pool)
                .await
                .map_err(|e| {
                    StoreError::database(
                        format!("reading the CDR of {contact} for tenant {tenant:?}"),
                        e,
                    )
                })?
        });
        row.map(CdrRow::into_cdr).transpose()
    }
}

impl CdrRow {
    fn into_cdr(self) -> Result<Cdr, StoreError> {
        let id = self.id;
        let corrupt = |column: &'static str, value: String, reason: String| StoreError::Corrupt {
            row: format!("cdrs row {id}"),
            column,
            value,
            reason,
        };
        let unsigned = |column: &'static str, v: i64| {
            u64::try_from(v).map_err(|_| corrupt(column, v.to_string(), "is negative".to_owned()))
        };
        let media: MediaType = self
            .media
            .parse()
            .map_err(|e: crate::model::UnknownMedia| {
                corrupt("media", self.media.clone(), e.to_string())
            })?;
        let disposition: Disposition = self
            .disposition
            .parse()
            .map_err(|reason| corrupt("disposition", self.disposition.clone(), reason))?;
        let handler = self
            .handler
            .map(|h| {
                u32::try_from(h)
                    .map(HandlerId)
                    .map_err(|_| corrupt("handler", h.to_string(), "is not a handler id".into()))
            })
            .transpose()?;
        let attributes = serde_json::from_str(&self.attributes)
            .map_err(|e| corrupt("attributes", self.attributes.clone(), e.to_string()))?;
        Ok(Cdr {
            id: cdr_id(id)?,
            record: NewCdr {
                tenant: self.tenant,
                contact: ContactId(unsigned("contact_id", self.contact_id)?),
                media,
                queue: self.queue,
                caller: self.caller,
                called: self.called,
                agent: self.agent,
                handler,
                arrived_at: Timestamp(self.arrived_at),
                answered_at: self.answered_at.map(Timestamp),
                ended_at: Timestamp(self.ended_at),
                wait_ms: unsigned("wait_ms", self.wait_ms)?,
                talk_ms: unsigned("talk_ms", self.talk_ms)?,
                wrap_up_ms: unsigned("wrap_up_ms", self.wrap_up_ms)?,
                recording: self.recording,
                disposition,
                cause: self.cause,
                attributes,
            },
        })
    }
}

/// A stored id as a [`CdrId`]; ids are positive in both backends.
fn cdr_id(id: i64) -> Result<CdrId, StoreError> {
    u64::try_from(id)
        .map(CdrId)
        .map_err(|_| StoreError::Corrupt {
            row: format!("cdrs row {id}"),
            column: "id",
            value: id.to_string(),
            reason: "is negative".to_owned(),
        })
}
