//! The catalog administrators edit over the API: queues, agents and flows as they last left
//! them, laid over the config file's catalog at startup.
//!
//! Every statement here runs unchanged on SQLite and PostgreSQL.

use sqlx::FromRow;

use crate::model::Timestamp;

use super::records::{CatalogItem, CatalogKind};
use super::{Store, StoreError, on_pool, validate};

/// Writes an item unless its name belongs to another client's live item; no row comes back
/// then. The ownership test and the write are one statement, so two clients cannot both take a
/// name. A deleted item's name is free for anyone.
const PUT_ITEM: &str = "\
    INSERT INTO catalog_items (kind, name, tenant, definition, updated_at) \
    VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (kind, name) DO UPDATE SET \
        tenant = excluded.tenant, \
        definition = excluded.definition, \
        updated_at = excluded.updated_at \
    WHERE catalog_items.tenant = excluded.tenant OR catalog_items.definition IS NULL \
    RETURNING id";

const ALL_ITEMS: &str = "\
    SELECT id, kind, name, tenant, definition, updated_at FROM catalog_items ORDER BY id";

/// A `catalog_items` row as the driver reads it.
#[derive(FromRow)]
struct ItemRow {
    id: i64,
    kind: String,
    name: String,
    tenant: String,
    definition: Option<String>,
    updated_at: i64,
}

impl Store {
    /// Writes (creates, replaces or, with no definition, deletes) an item of the catalog.
    ///
    /// Refused with [`StoreError::NotOwned`] when the name belongs to another client's item
    /// that is not deleted; the definition must be JSON of at most
    /// [`MAX_DEFINITION_BYTES`](super::MAX_DEFINITION_BYTES).
    pub async fn put_catalog_item(&self, item: &CatalogItem) -> Result<(), StoreError> {
        validate::catalog_item(item)?;
        let id: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar(PUT_ITEM)
                .bind(item.kind.code())
                .bind(&item.name)
                .bind(&item.tenant)
                .bind(&item.definition)
                .bind(item.updated_at.0)
                .fetch_optional(pool)
                .await
                .map_err(|e| {
                    StoreError::database(
                        format!(
                            "writing {} {:?} of tenant {:?}",
                            item.kind, item.name, item.tenant
                        ),
                        e,
                    )
                })?
        });
        match id {
            Some(_) => Ok(()),
            None => Err(StoreError::NotOwned {
                kind: item.kind,
                name: item.name.clone(),
            }),
        }
    }

    /// Every item of the catalog, deleted ones included, in the order they were first written.
    pub async fn catalog_items(&self) -> Result<Vec<CatalogItem>, StoreError> {
        let rows: Vec<ItemRow> = on_pool!(self, |pool| {
            sqlx::query_as(ALL_ITEMS)
                .fetch_all(pool)
                .await
                .map_err(|e| StoreError::database("reading the catalog", e))?
        });
        rows.into_iter().map(ItemRow::into_item).collect()
    }
}

impl ItemRow {
    fn into_item(self) -> Result<CatalogItem, StoreError> {
        let kind: CatalogKind = self.kind.parse().map_err(|reason| StoreError::Corrupt {
            row: format!("catalog_items row {}", self.id),
            column: "kind",
            value: self.kind.clone(),
            reason,
        })?;
        Ok(CatalogItem {
            kind,
            name: self.name,
            tenant: self.tenant,
            definition: self.definition,
            updated_at: Timestamp(self.updated_at),
        })
    }
}
