//! The one door for every action. Whichever way a request came in (the web page, the JSON API, an MQTT command, the
//! control socket, and the desk-phone keys to come), it becomes one [`Action`] and goes through [`perform`]: the
//! actor's role is checked against the one table in [`ActionKind::required`], the change is applied through the
//! engine (so it is on disk before anyone is answered), and the audit log gets an entry, for a refusal too.
//! Reads that expose customer data (the directory, exports, reports) are actions as well, checked by
//! [`authorize`].

use crate::accounts;
use crate::directory::Customer;
use crate::model::{AgentState, Role, Task};
use crate::runtime::daemon::Reloader;
use crate::runtime::engine::{AgentAction, EngineHandle};
use crate::store::Store;
use crate::tasks::{ActionError, ComplaintRequest, TaskAction};

/// How a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Page,
    Api,
    Mqtt,
    Control,
}

impl Door {
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Page => "page",
            Door::Api => "API",
            Door::Mqtt => "MQTT",
            Door::Control => "control socket",
        }
    }
}

/// Who is asking: `ann` (a user on the page), `user ann` (a signed-in browser on the API), `token grafana`, `mqtt`,
/// `control`; with the role they have and their address.
#[derive(Debug, Clone)]
pub struct Actor {
    pub door: Door,
    pub who: String,
    pub role: Role,
    pub from: Option<String>,
}

impl Actor {
    pub fn new(door: Door, who: impl Into<String>, role: Role) -> Actor {
        Actor {
            door,
            who: who.into(),
            role,
            from: None,
        }
    }

    /// The name an action records as its author (`by`): the user or token name without its prefix.
    pub fn name(&self) -> &str {
        self.who
            .split_once(' ')
            .map_or(self.who.as_str(), |(_, n)| n)
    }

    /// Writes an audit entry: `detail` prefixed with the door (but for the page, whose entries always read so).
    pub fn audit(&self, store: &Store, what: &str, detail: impl Into<String>) {
        let detail = match self.door {
            Door::Page => detail.into(),
            door => format!("{}: {}", door.as_str(), detail.into()),
        };
        accounts::audit(store, &self.who, what, detail, self.from.as_deref());
    }
}

/// Every kind of action, for the role table and its test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Calls, tasks, agents, the status and the live events.
    Read,
    /// One customer by number, as on a call's page.
    LookupCustomer,
    /// The directory as a list or a CSV file and call exports: a whole customer base in one request.
    ExportData,
    /// Daily, weekly, monthly and shift reports.
    ReadReports,
    /// Closing, acknowledging, answering a task (done, ack, respond, resolve, refer, followup_result).
    WorkTask,
    /// Assigning, cancelling a task, a supervisor's decision on a complaint.
    ManageTask,
    OpenComplaint,
    /// Signing an agent in or out, available or away.
    AgentStatus,
    /// Acknowledging every overdue task at once (the dashboard button).
    AckAll,
    /// Adding, changing, deleting or importing customers.
    EditDirectory,
    /// Reloading or editing the configuration.
    Configure,
    /// Users, API tokens, the audit log and the diagnostics page.
    Administer,
}

impl ActionKind {
    pub const ALL: [ActionKind; 12] = [
        ActionKind::Read,
        ActionKind::LookupCustomer,
        ActionKind::ExportData,
        ActionKind::ReadReports,
        ActionKind::WorkTask,
        ActionKind::ManageTask,
        ActionKind::OpenComplaint,
        ActionKind::AgentStatus,
        ActionKind::AckAll,
        ActionKind::EditDirectory,
        ActionKind::Configure,
        ActionKind::Administer,
    ];

    /// The lowest role that may do it: the whole policy of who may do what.
    pub fn required(self) -> Role {
        match self {
            ActionKind::Read => Role::Viewer,
            ActionKind::LookupCustomer
            | ActionKind::WorkTask
            | ActionKind::OpenComplaint
            | ActionKind::AgentStatus => Role::Agent,
            ActionKind::ExportData
            | ActionKind::ReadReports
            | ActionKind::ManageTask
            | ActionKind::AckAll
            | ActionKind::EditDirectory => Role::Supervisor,
            ActionKind::Configure | ActionKind::Administer => Role::Admin,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Read => "read",
            ActionKind::LookupCustomer => "look up a customer",
            ActionKind::ExportData => "export customer data",
            ActionKind::ReadReports => "read reports",
            ActionKind::WorkTask => "work on a task",
            ActionKind::ManageTask => "assign or cancel a task",
            ActionKind::OpenComplaint => "open a complaint",
            ActionKind::AgentStatus => "change an agent's status",
            ActionKind::AckAll => "acknowledge every overdue task",
            ActionKind::EditDirectory => "change the customer directory",
            ActionKind::Configure => "change the configuration",
            ActionKind::Administer => "manage users and tokens",
        }
    }

    /// The kind of a task action by its name (`done`, `assign`, ...).
    pub fn of_task_action(name: &str) -> ActionKind {
        match name {
            "assign" | "cancel" | "supervisor_decision" => ActionKind::ManageTask,
            _ => ActionKind::WorkTask,
        }
    }
}

/// A request refused for the actor's role: 403 on HTTP, an error answer on MQTT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("forbidden: {kind} needs the role {needed} or higher; {who} has the role {role}", kind = .kind.as_str(), needed = .needed.as_str(), role = .role.as_str())]
pub struct Forbidden {
    pub kind: ActionKind,
    pub who: String,
    pub role: Role,
    pub needed: Role,
}

/// Checks the actor's role for `kind`; a refusal is counted in the audit log and the daemon's log.
pub fn authorize(store: &Store, actor: &Actor, kind: ActionKind) -> Result<(), Forbidden> {
    let needed = kind.required();
    if actor.role >= needed {
        return Ok(());
    }
    tracing::warn!(who = %actor.who, door = actor.door.as_str(), role = actor.role.as_str(),
        action = kind.as_str(), "refused: the role is too low");
    actor.audit(
        store,
        "forbidden",
        format!("{} refused (role {})", kind.as_str(), actor.role.as_str()),
    );
    Err(Forbidden {
        kind,
        who: actor.who.clone(),
        role: actor.role,
        needed,
    })
}

/// A change, from any door.
#[derive(Debug, Clone)]
pub enum Action {
    Task {
        id: String,
        action: TaskAction,
    },
    OpenComplaint(ComplaintRequest),
    Agent {
        id: String,
        action: AgentAction,
    },
    /// `by`: who the tasks record as acknowledging them (default: the actor's name).
    AckAll {
        by: Option<String>,
    },
    SaveCustomer(Customer),
    DeleteCustomer(String),
    /// Good rows of a CSV file; `refused` rows were reported to the sender.
    ImportCustomers {
        good: Vec<Customer>,
        refused: usize,
    },
    ReloadConfig,
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Task { action, .. } => ActionKind::of_task_action(action.name()),
            Action::OpenComplaint(_) => ActionKind::OpenComplaint,
            Action::Agent { .. } => ActionKind::AgentStatus,
            Action::AckAll { .. } => ActionKind::AckAll,
            Action::SaveCustomer(_)
            | Action::DeleteCustomer(_)
            | Action::ImportCustomers { .. } => ActionKind::EditDirectory,
            Action::ReloadConfig => ActionKind::Configure,
        }
    }
}

/// What a carried-out action gives back.
#[derive(Debug, Clone)]
pub enum Done {
    Task(Box<Task>),
    Agent(AgentState),
    /// How many tasks or customers changed.
    Count(usize),
    /// What a reload changed.
    Changed(Vec<String>),
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error(transparent)]
    Failed(#[from] ActionError),
    /// The configuration was not applied; every problem.
    #[error("the configuration was not applied; the running one stays: {}", .0.join("; "))]
    Config(Vec<String>),
}

/// What [`perform`] needs: the engine to apply through, the store for the audit log, the reloader when the door
/// offers reloads.
#[derive(Clone)]
pub struct Ctx {
    pub engine: EngineHandle,
    pub store: Store,
    pub reloader: Option<Reloader>,
}

/// Checks, applies and audits one action. The answer comes once the change is on disk.
pub async fn perform(ctx: &Ctx, actor: &Actor, action: Action) -> Result<Done, Failure> {
    authorize(&ctx.store, actor, action.kind())?;
    let (what, detail, done) = match action {
        Action::Task { id, action } => {
            let name = action.name();
            let t = ctx.engine.task_action(&id, action).await?;
            ("task", format!("{name} {id}"), Done::Task(Box::new(t)))
        }
        Action::OpenComplaint(req) => {
            let from = req
                .call_id
                .as_deref()
                .map(|c| format!(" from call {c}"))
                .unwrap_or_default();
            let t = ctx.engine.open_complaint(req).await?;
            (
                "task",
                format!("complaint {} opened{from}", t.id),
                Done::Task(Box::new(t)),
            )
        }
        Action::Agent { id, action } => {
            let a = ctx.engine.agent_action(&id, action).await?;
            ("agent", format!("{id} {action:?}"), Done::Agent(a))
        }
        Action::AckAll { by } => {
            let n = ctx
                .engine
                .ack_all(by.as_deref().unwrap_or(actor.name()))
                .await?;
            ("task", format!("acknowledged {n} overdue"), Done::Count(n))
        }
        Action::SaveCustomer(c) => {
            let n = ctx.engine.customers(vec![c.clone()], vec![]).await?;
            ("customer", format!("saved {}", c.number), Done::Count(n))
        }
        Action::DeleteCustomer(number) => {
            let n = ctx.engine.customers(vec![], vec![number.clone()]).await?;
            ("customer", format!("deleted {number}"), Done::Count(n))
        }
        Action::ImportCustomers { good, refused } => {
            let count = good.len();
            ctx.engine.customers(good, vec![]).await?;
            (
                "customer",
                format!("imported {count} from CSV, {refused} rows refused"),
                Done::Count(count),
            )
        }
        Action::ReloadConfig => {
            let Some(reloader) = &ctx.reloader else {
                return Err(Failure::Config(vec![format!(
                    "the configuration cannot be reloaded through the {}",
                    actor.door.as_str()
                )]));
            };
            let changed = reloader.reload().await.map_err(Failure::Config)?;
            (
                "config",
                format!("reloaded: {}", changed.join("; ")),
                Done::Changed(changed),
            )
        }
    };
    actor.audit(&ctx.store, what, detail);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy, written out: a change here is a change of who may do what, and must be deliberate.
    #[test]
    fn who_may_do_what() {
        use ActionKind as K;
        let expected = [
            (K::Read, Role::Viewer),
            (K::LookupCustomer, Role::Agent),
            (K::WorkTask, Role::Agent),
            (K::OpenComplaint, Role::Agent),
            (K::AgentStatus, Role::Agent),
            (K::ExportData, Role::Supervisor),
            (K::ReadReports, Role::Supervisor),
            (K::ManageTask, Role::Supervisor),
            (K::AckAll, Role::Supervisor),
            (K::EditDirectory, Role::Supervisor),
            (K::Configure, Role::Admin),
            (K::Administer, Role::Admin),
        ];
        assert_eq!(expected.len(), ActionKind::ALL.len());
        for (kind, role) in expected {
            assert_eq!(kind.required(), role, "{kind:?}");
        }
    }

    #[test]
    fn every_kind_needs_a_role_and_admin_may_do_everything() {
        for k in ActionKind::ALL {
            assert!(Role::Admin >= k.required(), "{k:?}");
        }
        assert_eq!(ActionKind::Read.required(), Role::Viewer);
        for k in ActionKind::ALL
            .into_iter()
            .filter(|k| *k != ActionKind::Read)
        {
            assert!(k.required() > Role::Viewer, "a viewer may only read: {k:?}");
        }
        assert_eq!(ActionKind::of_task_action("cancel"), ActionKind::ManageTask);
        assert_eq!(ActionKind::of_task_action("done"), ActionKind::WorkTask);
    }

    #[test]
    fn an_actor_name_drops_the_door_prefix() {
        assert_eq!(
            Actor::new(Door::Api, "token grafana", Role::Viewer).name(),
            "grafana"
        );
        assert_eq!(
            Actor::new(Door::Mqtt, "mqtt", Role::Supervisor).name(),
            "mqtt"
        );
    }
}
