//! Does this tenant's MaaS360 answer the routes the client calls? Eight of them are guesses
//! (see [`crate::routes`]), so before trusting a tenant to dirsync an operator runs the probe:
//! it calls each route once and reports, per route, OK or the HTTP status and MaaS360's error
//! text, next to the route's path, evidence and source, so a failure points at the line of the
//! routes file to fix.
//!
//! Read-only, it checks authentication, token refresh (auth 2.0), the user search, the group
//! list and the members of one user group. With [`ProbeOptions::write`] it also creates a
//! throwaway user and user group named with [`ProbeOptions::prefix`], edits the user, adds it
//! to the group, reads the group's members, removes it, deactivates, reactivates and deletes
//! it, and deletes the group. Whatever it created is removed even when a step fails; what it
//! could not remove is listed in [`ProbeReport::leftovers`].

use serde::Serialize;

use crate::client::Maas360Client;
use crate::config::AuthVersion;
use crate::error::Maas360Error;
use crate::model::{DeleteOutcome, NewUser, UserChanges, UserSearch};
use crate::routes::RouteName;

/// What the probe may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Also create, change and delete a throwaway user and user group.
    pub write: bool,
    /// Start of the throwaway user's and group's names, so they are easy to recognise.
    pub prefix: String,
    /// Domain of the throwaway user. The default is under `.invalid` (RFC 2606), so no mail
    /// MaaS360 might send to the user can reach anyone.
    pub domain: String,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            write: false,
            prefix: "dirsync-probe-".to_owned(),
            domain: "dirsync-probe.invalid".to_owned(),
        }
    }
}

/// How one check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Ok,
    Failed,
    /// Not checked: something it needs failed or is missing (see the note).
    Skipped,
    /// Not used with this configuration (token refresh with auth 1.0).
    NotApplicable,
}

/// One check of one route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeStep {
    /// What was checked, in words.
    pub check: String,
    pub route: RouteName,
    pub method: String,
    pub path: String,
    /// The route's evidence tag, `[operator]` when a routes file set it.
    pub evidence: String,
    pub source: String,
    pub outcome: StepOutcome,
    /// HTTP status of a failed call, when an answer arrived.
    pub status: Option<u16>,
    /// What went wrong, MaaS360's text included.
    pub error: Option<String>,
    pub note: Option<String>,
}

/// The probe's findings; serialisable for `--json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// Every route needed answered as expected, and nothing was left behind.
    pub passed: bool,
    pub write: bool,
    pub steps: Vec<ProbeStep>,
    /// Removing what the probe created after a failed step.
    pub cleanup: Vec<ProbeStep>,
    /// What the probe created and could not remove; remove these by hand.
    pub leftovers: Vec<String>,
}

impl ProbeReport {
    /// The steps that failed.
    pub fn failures(&self) -> impl Iterator<Item = &ProbeStep> {
        self.steps
            .iter()
            .filter(|s| s.outcome == StepOutcome::Failed)
    }
}

/// Records steps against the client's route table.
struct Recorder<'a> {
    client: &'a Maas360Client,
    steps: Vec<ProbeStep>,
}

impl Recorder<'_> {
    fn push(
        &mut self,
        check: &str,
        route: RouteName,
        outcome: StepOutcome,
        error: Option<&Maas360Error>,
        note: Option<String>,
    ) {
        let r = self.client.routes().get(route);
        self.steps.push(ProbeStep {
            check: check.to_owned(),
            route,
            method: r.method.as_str().to_owned(),
            path: r.template.clone(),
            evidence: r.evidence.tag().to_owned(),
            source: r.source.clone(),
            outcome,
            status: error.and_then(Maas360Error::status),
            error: error.map(ToString::to_string),
            note,
        });
    }

    /// Records a call's result; the value on success.
    fn record<T>(
        &mut self,
        check: &str,
        route: RouteName,
        result: Result<T, Maas360Error>,
        note: impl FnOnce(&T) -> Option<String>,
    ) -> Option<T> {
        match result {
            Ok(value) => {
                let note = note(&value);
                self.push(check, route, StepOutcome::Ok, None, note);
                Some(value)
            }
            Err(error) => {
                self.push(check, route, StepOutcome::Failed, Some(&error), None);
                None
            }
        }
    }

    fn skip(&mut self, check: &str, route: RouteName, why: &str) {
        self.push(
            check,
            route,
            StepOutcome::Skipped,
            None,
            Some(why.to_owned()),
        );
    }
}

/// Runs the probe. Never fails as a whole: every failure is a step of the report.
pub async fn run(client: &Maas360Client, options: &ProbeOptions) -> ProbeReport {
    let mut rec = Recorder {
        client,
        steps: Vec::new(),
    };
    let auth_route = match client.options().auth_version {
        AuthVersion::V1 => RouteName::AuthV1,
        AuthVersion::V2 => RouteName::AuthV2,
    };
    let authenticated = rec
        .record(
            "authenticate",
            auth_route,
            client.authenticate().await,
            |()| None,
        )
        .is_some();
    if !authenticated {
        let why = "authentication failed; every call needs a token";
        for (check, route) in read_checks() {
            rec.skip(check, route, why);
        }
        if options.write {
            for (check, route) in write_checks() {
                rec.skip(check, route, why);
            }
        }
        return finish(rec.steps, Vec::new(), Vec::new(), options.write);
    }
    read_only(&mut rec).await;
    let (cleanup, leftovers) = if options.write {
        write(&mut rec, options).await
    } else {
        (Vec::new(), Vec::new())
    };
    finish(rec.steps, cleanup, leftovers, options.write)
}

fn finish(
    steps: Vec<ProbeStep>,
    cleanup: Vec<ProbeStep>,
    leftovers: Vec<String>,
    write: bool,
) -> ProbeReport {
    // A route skipped in one step (nothing to read yet) passes when another step checked it;
    // one nothing checked is not known to work, so the probe does not pass (a read-only probe
    // of a tenant without user groups says so: run it with --write).
    let checked: std::collections::HashSet<RouteName> = steps
        .iter()
        .filter(|s| s.outcome == StepOutcome::Ok)
        .map(|s| s.route)
        .collect();
    let passed = leftovers.is_empty()
        && steps.iter().all(|s| match s.outcome {
            StepOutcome::Ok | StepOutcome::NotApplicable => true,
            StepOutcome::Failed => false,
            StepOutcome::Skipped => checked.contains(&s.route),
        });
    ProbeReport {
        passed,
        write,
        steps,
        cleanup,
        leftovers,
    }
}

fn read_checks() -> [(&'static str, RouteName); 4] {
    [
        ("refresh the token", RouteName::RefreshToken),
        ("search users", RouteName::SearchUsers),
        ("list groups", RouteName::ListGroups),
        ("read the members of a user group", RouteName::UsersInGroup),
    ]
}

fn write_checks() -> [(&'static str, RouteName); 12] {
    [
        ("add a user", RouteName::AddUser),
        ("create a user group", RouteName::CreateUserGroup),
        ("edit the user", RouteName::EditUser),
        ("add the user to the group", RouteName::AddGroupsToUser),
        (
            "see the user among the group's members",
            RouteName::UsersInGroup,
        ),
        (
            "remove the user from the group",
            RouteName::RemoveGroupsFromUser,
        ),
        ("deactivate the user", RouteName::DeactivateUser),
        ("reactivate the user", RouteName::ReactivateUser),
        ("delete the user", RouteName::DeleteUser),
        (
            "copy an app distribution onto the group",
            RouteName::DistributeApp,
        ),
        ("set the group's policy", RouteName::ChangeGroupPolicy),
        ("delete the user group", RouteName::DeleteUserGroup),
    ]
}

async fn read_only(rec: &mut Recorder<'_>) {
    let client = rec.client;
    let [refresh, search, list, members] = read_checks();
    if client.options().auth_version == AuthVersion::V2 {
        rec.record(refresh.0, refresh.1, client.refresh_token().await, |()| {
            None
        });
    } else {
        rec.push(
            refresh.0,
            refresh.1,
            StepOutcome::NotApplicable,
            None,
            Some("auth 1.0 issues no refresh token".to_owned()),
        );
    }
    let query = UserSearch {
        page_number: 1,
        page_size: 25,
        ..UserSearch::default()
    };
    rec.record(
        search.0,
        search.1,
        client.search_users(&query).await,
        |page| Some(format!("{} users", page.total)),
    );
    let user_type = client.options().user_group_type;
    let groups = rec.record(list.0, list.1, client.list_groups(1, 250).await, |page| {
        let users = page
            .items
            .iter()
            .filter(|g| g.type_code() == Some(user_type))
            .count();
        Some(format!(
            "{} groups, {users} user groups (groupType {user_type}) on the first page",
            page.total
        ))
    });
    let Some(groups) = groups else {
        rec.skip(members.0, members.1, "the group list failed");
        return;
    };
    let Some(group) = groups
        .items
        .into_iter()
        .find(|g| g.type_code() == Some(user_type))
    else {
        rec.skip(
            members.0,
            members.1,
            "no user group to read; the write probe creates one",
        );
        return;
    };
    rec.record(
        members.0,
        members.1,
        client.users_in_group(&group.group_identifier, 1, 25).await,
        |page| Some(format!("{:?}: {} members", group.name, page.total)),
    );
}

/// What the write probe created and has not removed yet.
#[derive(Default)]
struct Created {
    user: Option<(String, String)>,
    group: Option<(String, String)>,
    member: bool,
}

async fn write(rec: &mut Recorder<'_>, options: &ProbeOptions) -> (Vec<ProbeStep>, Vec<String>) {
    let client = rec.client;
    let [
        add,
        create,
        edit,
        join,
        listed,
        leave,
        deactivate,
        reactivate,
        delete,
        distribute,
        set_policy,
        delete_group,
    ] = write_checks();
    let suffix = format!("{:08x}", rand::random::<u32>());
    let user_name = format!("{}{suffix}", options.prefix);
    let group_name = format!("{}group-{suffix}", options.prefix);
    let mut created = Created::default();

    let new_user = NewUser {
        user_name: user_name.clone(),
        domain: options.domain.clone(),
        email: format!("{user_name}@{}", options.domain),
        full_name: "dirsync probe".to_owned(),
    };
    match rec.record(add.0, add.1, client.add_user(&new_user).await, |_| None) {
        Some(id) => created.user = Some((id, user_name.clone())),
        // A lost answer may still have created it; find it so it can be removed.
        None => {
            if let Ok(Some(found)) = client.find_user(&user_name, &options.domain).await {
                created.user = Some((found.user_identifier, user_name.clone()));
            }
        }
    }
    match rec.record(
        create.0,
        create.1,
        client.create_user_group(&group_name).await,
        |_| None,
    ) {
        Some(id) => created.group = Some((id, group_name.clone())),
        None => {
            if let Ok(groups) = client.list_user_groups().await
                && let Some(found) = groups.into_iter().find(|g| g.group.name == group_name)
            {
                created.group = Some((found.group.group_identifier, group_name.clone()));
            }
        }
    }

    let user = created.user.as_ref().map(|(id, _)| id.clone());
    let group = created.group.as_ref().map(|(id, _)| id.clone());
    let no_user = "the user could not be created";
    let no_group = "the user group could not be created";
    match &user {
        Some(id) => {
            let changes = UserChanges {
                full_name: Some("dirsync probe (edited)".to_owned()),
                ..UserChanges::default()
            };
            rec.record(edit.0, edit.1, client.edit_user(id, &changes).await, |()| {
                None
            });
        }
        None => rec.skip(edit.0, edit.1, no_user),
    }
    match (&user, &group) {
        (Some(id), Some(gid)) => {
            let joined = rec
                .record(
                    join.0,
                    join.1,
                    client
                        .add_user_to_groups(id, std::slice::from_ref(gid))
                        .await,
                    |()| None,
                )
                .is_some();
            created.member = joined;
            if joined {
                check_membership(rec, listed, id, gid).await;
                let left = rec
                    .record(
                        leave.0,
                        leave.1,
                        client
                            .remove_user_from_groups(id, std::slice::from_ref(gid))
                            .await,
                        |()| None,
                    )
                    .is_some();
                created.member = !left;
            } else {
                rec.skip(listed.0, listed.1, "adding the user to the group failed");
                rec.skip(leave.0, leave.1, "adding the user to the group failed");
            }
        }
        (None, _) => {
            for (check, route) in [join, listed, leave] {
                rec.skip(check, route, no_user);
            }
        }
        (_, None) => {
            for (check, route) in [join, listed, leave] {
                rec.skip(check, route, no_group);
            }
        }
    }
    match &user {
        Some(id) => {
            rec.record(
                deactivate.0,
                deactivate.1,
                client.deactivate_user(id).await,
                |()| None,
            );
            rec.record(
                reactivate.0,
                reactivate.1,
                client.reactivate_user(id).await,
                |()| None,
            );
            let deleted = rec.record(delete.0, delete.1, client.delete_user(id).await, |o| {
                Some(
                    match o {
                        DeleteOutcome::Queued => "queued for MaaS360's daily deletion job",
                        DeleteOutcome::Deleted => "deleted",
                    }
                    .to_owned(),
                )
            });
            if deleted.is_some() {
                created.user = None;
                created.member = false;
            }
        }
        None => {
            for (check, route) in [deactivate, reactivate, delete] {
                rec.skip(check, route, no_user);
            }
        }
    }
    match &group {
        Some(gid) => copy_distributions(rec, gid, distribute, set_policy).await,
        None => {
            for (check, route) in [distribute, set_policy] {
                rec.skip(check, route, no_group);
            }
        }
    }
    match &group {
        Some(gid) => {
            if rec
                .record(
                    delete_group.0,
                    delete_group.1,
                    client.delete_user_group(gid).await,
                    |()| None,
                )
                .is_some()
            {
                created.group = None;
            }
        }
        None => rec.skip(delete_group.0, delete_group.1, no_group),
    }
    clean_up(client, created).await
}

/// An Option 1 copy in small: one app and one policy the tenant already distributes are put on
/// the throwaway group (which has no members, so no device receives anything) and must show in
/// the group list. A tenant that distributes nothing needs neither route.
async fn copy_distributions(
    rec: &mut Recorder<'_>,
    group: &str,
    distribute: (&'static str, RouteName),
    set_policy: (&'static str, RouteName),
) {
    let client = rec.client;
    let groups = match client.list_groups(1, 250).await {
        Ok(page) => page.items,
        Err(error) => {
            for (check, route) in [distribute, set_policy] {
                rec.push(check, route, StepOutcome::Failed, Some(&error), None);
            }
            return;
        }
    };
    let app = groups
        .iter()
        .flat_map(|g| g.app_distributions.iter())
        .find(|app| !app.app_type.is_empty())
        .cloned();
    let policy = groups
        .iter()
        .flat_map(|g| g.policy_distributions.iter())
        .find(|policy| !policy.platform.is_empty())
        .cloned();
    match app {
        Some(app) => {
            if rec
                .record(
                    distribute.0,
                    distribute.1,
                    client.distribute_app_to_group(group, &app).await,
                    |()| Some(format!("app {}", app.id)),
                )
                .is_some()
            {
                confirm_on_group(rec, distribute, group, |g| {
                    g.app_distributions.iter().any(|a| a.id == app.id)
                })
                .await;
            }
        }
        None => rec.push(
            distribute.0,
            distribute.1,
            StepOutcome::NotApplicable,
            None,
            Some("no group carries an app with its appType to copy".to_owned()),
        ),
    }
    match policy {
        Some(policy) => {
            let names = std::slice::from_ref(&policy.name);
            if rec
                .record(
                    set_policy.0,
                    set_policy.1,
                    client
                        .set_group_policies(group, &policy.platform, names)
                        .await,
                    |()| Some(format!("policy {}", policy.name)),
                )
                .is_some()
            {
                confirm_on_group(rec, set_policy, group, |g| {
                    g.policy_distributions.iter().any(|p| p.name == policy.name)
                })
                .await;
            }
        }
        None => rec.push(
            set_policy.0,
            set_policy.1,
            StepOutcome::NotApplicable,
            None,
            Some("no group carries a policy to copy".to_owned()),
        ),
    }
}

/// A write answered OK must also show in the group list: otherwise the step failed.
async fn confirm_on_group(
    rec: &mut Recorder<'_>,
    (check, route): (&'static str, RouteName),
    group: &str,
    shows: impl Fn(&crate::Maas360Group) -> bool,
) {
    match rec.client.list_groups(1, 250).await {
        Ok(page) => {
            let found = page.items.iter().find(|g| g.group_identifier == group);
            if !found.is_some_and(shows)
                && let Some(last) = rec.steps.last_mut().filter(|s| s.route == route)
            {
                last.outcome = StepOutcome::Failed;
                last.note = Some(format!(
                    "{check}: MaaS360 answered OK but the group list does not show it"
                ));
            }
        }
        Err(error) => rec.push(check, route, StepOutcome::Failed, Some(&error), None),
    }
}

/// The user must show among the group's members: the add call answering OK is not proof.
async fn check_membership(
    rec: &mut Recorder<'_>,
    (check, route): (&'static str, RouteName),
    user: &str,
    group: &str,
) {
    match rec.client.users_in_group(group, 1, 25).await {
        Ok(page) if page.items.iter().any(|u| u.user_identifier == user) => {
            rec.push(check, route, StepOutcome::Ok, None, None);
        }
        Ok(page) => rec.push(
            check,
            route,
            StepOutcome::Failed,
            None,
            Some(format!(
                "the group lists {} members, not the probe user",
                page.total
            )),
        ),
        Err(error) => rec.push(check, route, StepOutcome::Failed, Some(&error), None),
    }
}

/// Removes what a failed step left behind, and says what could not be removed.
async fn clean_up(client: &Maas360Client, created: Created) -> (Vec<ProbeStep>, Vec<String>) {
    let mut rec = Recorder {
        client,
        steps: Vec::new(),
    };
    let mut leftovers = Vec::new();
    if let Some((id, name)) = &created.user {
        if created.member
            && let Some((gid, _)) = &created.group
        {
            rec.record(
                "cleanup: remove the user from the group",
                RouteName::RemoveGroupsFromUser,
                client
                    .remove_user_from_groups(id, std::slice::from_ref(gid))
                    .await,
                |()| None,
            );
        }
        let deleted = rec
            .record(
                "cleanup: delete the user",
                RouteName::DeleteUser,
                client.delete_user(id).await,
                |_| None,
            )
            .is_some();
        if !deleted {
            // At least leave it harmless.
            let deactivated = rec
                .record(
                    "cleanup: deactivate the user that could not be deleted",
                    RouteName::DeactivateUser,
                    client.deactivate_user(id).await,
                    |()| None,
                )
                .is_some();
            leftovers.push(format!(
                "user {name} (userIdentifier {id}), {}",
                if deactivated {
                    "deactivated"
                } else {
                    "still active"
                }
            ));
        }
    }
    if let Some((gid, name)) = &created.group {
        let deleted = rec
            .record(
                "cleanup: delete the user group",
                RouteName::DeleteUserGroup,
                client.delete_user_group(gid).await,
                |()| None,
            )
            .is_some();
        if !deleted {
            leftovers.push(format!("user group {name} (groupID {gid})"));
        }
    }
    (rec.steps, leftovers)
}
