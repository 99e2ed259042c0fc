//! The shape every workspace-scoped v1 collection shares, written once: list and create at
//! `/v1/Workspaces/{WS}/{Collection}`, fetch, update and delete at `/v1/Workspaces/{WS}/{Collection}/{Sid}`.
//!
//! A resource module says where it lives in one line ([`collection!`]: its path, list key and path id, which
//! also writes its `router()`), then only what differs (its parameters, the command each write becomes, its
//! filters and its fields) by implementing [`Resource`] (reads, with [`render`] for the fields every resource
//! has) and [`Editable`] (writes); the handlers here parse the path, finish the parameters, call the engine and
//! render.

use std::future::Future;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use engine::command::Command;
use engine::{Prefix, Sid, Timestamp};
use serde_json::Value;

use crate::extract::{if_match, json, sid, Segments};
use crate::handle::{Engine, FromReply};
use crate::page::{Envelope, List};
use crate::params::{Form, Params, Query};
use crate::{ApiResult, ServerState};

/// Where a collection's items are and how one is named: what [`collection!`] writes for a resource.
pub(crate) trait Collection: Sized + Send + Sync + 'static {
    /// The collection's path segment under the workspace, e.g. `TaskQueues`.
    const COLLECTION: &'static str;
    /// The name of the item's path parameter in the route (routes that share a position share the name).
    const SEGMENT: &'static str;
    /// The key of the items in a list page, e.g. `task_queues`.
    const LIST_KEY: &'static str;
    /// How the path names one: a SID, or (task channels) a SID or unique name.
    type Id: Send + 'static;

    /// Reads the item's path segment.
    fn id(segment: &str) -> ApiResult<Self::Id>;
    fn sid(&self) -> Sid;
    fn workspace_sid(&self) -> Sid;
}

/// Implements [`Collection`] for an engine model with `sid` and `workspace_sid` fields, and writes the
/// module's `router()` (`read` for a collection that is only fetched and listed):
/// `collection!(TaskQueue at "TaskQueues"/{queue}, listed as "task_queues", Sid of Prefix::TaskQueue);`.
/// An id of `String` is taken as it is (the engine resolves a task channel's SID or unique name).
macro_rules! collection {
    ($model:ident at $collection:literal / {$segment:ident}, listed as $key:literal, $id:ident of $prefix:expr $(, $read:ident)?) => {
        pub fn router() -> axum::Router<$crate::ServerState> {
            $crate::resources::crud::collection!(@router $model $($read)?)
        }

        impl $crate::resources::crud::Collection for $model {
            const COLLECTION: &'static str = $collection;
            const SEGMENT: &'static str = stringify!($segment);
            const LIST_KEY: &'static str = $key;
            type Id = $id;

            fn id(segment: &str) -> $crate::ApiResult<$id> {
                $crate::resources::crud::PathId::parse(segment, $prefix)
            }

            fn sid(&self) -> engine::Sid {
                self.sid
            }

            fn workspace_sid(&self) -> engine::Sid {
                self.workspace_sid
            }
        }
    };
    (@router $model:ident) => { $crate::resources::crud::router::<$model>() };
    (@router $model:ident read) => { $crate::resources::crud::read_router::<$model>() };
}
pub(crate) use collection;

/// How a path segment names an item: a SID of the collection's kind (named `Sid` in errors), or text the
/// engine resolves.
pub(crate) trait PathId: Sized {
    fn parse(segment: &str, prefix: Prefix) -> ApiResult<Self>;
}

impl PathId for Sid {
    fn parse(segment: &str, prefix: Prefix) -> ApiResult<Sid> {
        sid(segment, prefix, "Sid")
    }
}

impl PathId for String {
    fn parse(segment: &str, _: Prefix) -> ApiResult<String> {
        Ok(segment.to_owned())
    }
}

/// An item of `R` with the fields every resource has (see [`super::base`]) and its own, which `own` makes
/// given the item's URL, `{workspace}/{COLLECTION}/{sid}`, for its links.
pub(super) fn render<R: Collection>(
    r: &R,
    state: &ServerState,
    dates: (Timestamp, Timestamp),
    own: impl FnOnce(&str) -> Value,
) -> Value {
    let (ws, sid) = (r.workspace_sid(), r.sid());
    let url = state.urls().workspace(ws, &format!("/{}/{sid}", R::COLLECTION));
    let own = own(&url);
    super::base(state, Some(ws), sid, dates, url, own)
}

/// A resource that can be fetched and listed.
pub(crate) trait Resource: Collection {
    /// The list's filters.
    type Filter: Send + 'static;

    /// The resource with the spec's fields.
    fn render(&self, state: &ServerState) -> Value;
    /// The response for one resource (a resource with a version adds an `ETag`).
    fn respond(&self, state: &ServerState, status: StatusCode) -> Response {
        json(status, self.render(state))
    }

    fn fetch(engine: &Engine, ws: Sid, id: Self::Id) -> impl Future<Output = ApiResult<Self>> + Send + '_;
    /// Reads the list's filters (before the parameters are finished).
    fn filter(p: &mut Params) -> ApiResult<Self::Filter>;
    fn list(
        engine: &Engine,
        ws: Sid,
        filter: Self::Filter,
    ) -> impl Future<Output = ApiResult<Vec<Self>>> + Send + '_;
}

/// A resource that can be created, updated and deleted: each write is one engine command.
pub(crate) trait Editable: Resource + FromReply {
    fn create(ws: Sid, p: &mut Params) -> ApiResult<Command>;
    fn update(ws: Sid, id: Self::Id, p: &mut Params, if_match: Option<String>) -> ApiResult<Command>;
    fn delete(ws: Sid, id: Self::Id, if_match: Option<String>) -> Command;
}

fn workspace(ws: &str) -> ApiResult<Sid> {
    sid(ws, Prefix::Workspace, "WorkspaceSid")
}

/// List and fetch.
pub(super) fn read_router<R: Resource>() -> Router<ServerState> {
    Router::new()
        .route(&format!("/v1/Workspaces/{{ws}}/{}", R::COLLECTION), get(list::<R>))
        .route(&format!("/v1/Workspaces/{{ws}}/{}/{{{}}}", R::COLLECTION, R::SEGMENT), get(fetch::<R>))
}

/// List, create, fetch, update and delete.
pub(super) fn router<R: Editable>() -> Router<ServerState> {
    Router::new()
        .route(&format!("/v1/Workspaces/{{ws}}/{}", R::COLLECTION), get(list::<R>).post(create::<R>))
        .route(
            &format!("/v1/Workspaces/{{ws}}/{}/{{{}}}", R::COLLECTION, R::SEGMENT),
            get(fetch::<R>).post(update::<R>).delete(delete::<R>),
        )
}

async fn create<R: Editable>(
    State(state): State<ServerState>,
    Segments(ws): Segments<String>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let ws = workspace(&ws)?;
    let command = R::create(ws, &mut p)?;
    write::<R>(&state, p, command, StatusCode::CREATED).await
}

/// Applies a create or an update once its parameters are all read, and answers with the resource.
async fn write<R: Editable>(
    state: &ServerState,
    p: Params,
    command: Command,
    status: StatusCode,
) -> ApiResult<Response> {
    p.finish()?;
    let written: R = state.engine().apply(command).await?;
    Ok(written.respond(state, status))
}

async fn fetch<R: Resource>(
    State(state): State<ServerState>,
    Segments((ws, id)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let (ws, id) = (workspace(&ws)?, R::id(&id)?);
    let found = R::fetch(state.engine(), ws, id).await?;
    Ok(found.respond(&state, StatusCode::OK))
}

async fn update<R: Editable>(
    State(state): State<ServerState>,
    Segments((ws, id)): Segments<(String, String)>,
    headers: HeaderMap,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let (ws, id) = (workspace(&ws)?, R::id(&id)?);
    let command = R::update(ws, id, &mut p, if_match(&headers))?;
    write::<R>(&state, p, command, StatusCode::OK).await
}

async fn delete<R: Editable>(
    State(state): State<ServerState>,
    Segments((ws, id)): Segments<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (ws, id) = (workspace(&ws)?, R::id(&id)?);
    state.engine().apply::<()>(R::delete(ws, id, if_match(&headers))).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list<R: Resource>(
    State(state): State<ServerState>,
    Segments(ws): Segments<String>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let ws = workspace(&ws)?;
    let list = List::from_params(&mut p)?;
    let filter = R::filter(&mut p)?;
    p.finish()?;
    let items = R::list(state.engine(), ws, filter).await?;
    Ok(list.respond(
        Envelope::V1,
        &state.urls().workspace(ws, &format!("/{}", R::COLLECTION)),
        R::LIST_KEY,
        &items,
        |x| x.sid().to_string(),
        |x| x.render(&state),
    ))
}
