//! `shutong catalog`: the data catalog: resources and their data elements.

use crate::context::{Ctx, Outcome, Shown, shown};
use clap::Subcommand;
use shutong_sdk::builder::{self};
use shutong_sdk::reads;
use shutong_sdk::system_api::catalog::{Classification, Field, Publish, ShareType};

use super::values::*;

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Publish a resource, or a new version of it (a data provider of a department).
    Publish {
        /// The resource's code, `ORG/NAME`.
        #[arg(long)]
        id: String,
        #[arg(long)]
        org: String,
        /// general, important or core.
        #[arg(long, value_parser = classification)]
        classification: Classification,
        /// unconditional, conditional or not_shared.
        #[arg(long, value_parser = share)]
        share: ShareType,
        #[arg(long, default_value = "")]
        conditions: String,
        /// Comma-separated: query, verify, batch.
        #[arg(long, default_value = "query", value_parser = methods)]
        methods: u8,
        /// A field as NAME:TYPE:CLASSIFICATION[:ELEMENT]; repeat for each.
        #[arg(long = "field", required = true, value_parser = field)]
        fields: Vec<Field>,
        #[arg(long, default_value = "")]
        source_system: String,
        #[arg(long)]
        personal_data: bool,
    },
    /// Withdraw a resource and release its data elements.
    Withdraw {
        /// The resource code, `ORG/NAME` (or the data element, for `element`).
        #[arg(long)]
        id: String,
    },
    /// A resource: its latest version, or `--version`.
    Show {
        /// The resource code, `ORG/NAME` (or the data element, for `element`).
        #[arg(long)]
        id: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Which resource is the one source of a data element (一数一源).
    Element {
        /// The resource code, `ORG/NAME` (or the data element, for `element`).
        #[arg(long)]
        id: String,
    },
}

pub async fn run(command: CatalogCommand, ctx: &Ctx) -> Shown {
    Ok(match command {
        CatalogCommand::Publish {
            id,
            org,
            classification,
            share,
            conditions,
            methods,
            fields,
            source_system,
            personal_data,
        } => Outcome::Send(builder::publish_resource(&Publish {
            code: id,
            provider_org: org,
            source_system,
            classification,
            personal_data,
            share_type: share,
            conditions,
            methods,
            fields,
            metadata_hash: [0; 32],
        })),
        CatalogCommand::Withdraw { id } => Outcome::Send(builder::withdraw_resource(&id)),
        CatalogCommand::Show { id, version } => {
            let r = ctx.client()?.read(reads::resource(&id, version)).await?;
            let fields: Vec<serde_json::Value> = r
                .fields
                .iter()
                .map(|f| serde_json::json!({"name": f.name, "type": f.data_type, "classification": f.classification.name(), "element": f.element}))
                .collect();
            let json = serde_json::json!({
                "id": r.code, "version": r.version, "provider_org": r.provider_org,
                "classification": r.classification.name(), "share": r.share_type.name(),
                "conditions": r.conditions, "personal_data": r.personal_data, "status": r.status.name(),
                "fields": fields, "published_height": r.published_height,
            });
            let names: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).collect();
            let text = format!(
                "{} v{}  by {}  {}  {}  {}\nfields {}",
                r.code,
                r.version,
                r.provider_org,
                r.classification.name(),
                r.share_type.name(),
                r.status.name(),
                names.join(",")
            );
            return shown(json, text);
        }
        CatalogCommand::Element { id } => {
            let s = ctx.client()?.read(reads::element_source(&id)).await?;
            let json =
                serde_json::json!({"element": s.element, "resource": s.resource, "provider_org": s.provider_org});
            return shown(json, format!("{} comes from {} ({})", s.element, s.resource, s.provider_org));
        }
    })
}
