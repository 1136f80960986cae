//! What the server serves, from its discovery documents: the resource a word on the command line
//! means (`pods`, `pod`, `po`, `Pod`, `deployments.apps`), or the one a manifest's
//! apiVersion and kind name. The core group is asked first, alone: it holds what most commands
//! touch, and one request is all they then cost.

use std::sync::Mutex;

use serde::Deserialize;

use crate::args::ApiResourcesArgs;
use crate::config::Context;
use crate::Error;

/// One served resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub verbs: Vec<String>,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The collection, in `namespace` (or across all namespaces with `None`).
    pub fn collection(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{}/namespaces/{ns}/{}", self.prefix(), self.plural),
            None => format!("{}/{}", self.prefix(), self.plural),
        }
    }

    pub fn object(&self, namespace: &str, name: &str) -> String {
        format!("{}/{name}", self.collection(Some(namespace)))
    }

    /// How kubectl names the type in `TYPE/NAME` output: `pod`, `deployment.apps`.
    pub fn type_name(&self) -> String {
        let singular = if self.singular.is_empty() {
            self.kind.to_lowercase()
        } else {
            self.singular.clone()
        };
        if self.group.is_empty() {
            singular
        } else {
            format!("{singular}.{}", self.group)
        }
    }

    /// How error messages name the resource: `pods`, `deployments.apps`.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn matches(&self, word: &str) -> bool {
        let word_lower = word.to_lowercase();
        self.plural == word_lower
            || self.singular == word_lower
            || self.kind.to_lowercase() == word_lower
            || self.short_names.contains(&word_lower)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceList {
    group_version: String,
    resources: Vec<ListedResource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedResource {
    name: String,
    #[serde(default)]
    singular_name: String,
    namespaced: bool,
    kind: String,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    short_names: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupList {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    versions: Vec<GroupVersion>,
    preferred_version: Option<GroupVersion>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct GroupVersion {
    group_version: String,
}

/// The resources discovered so far: the core group first, every group once it is needed.
#[derive(Default)]
pub struct Cache {
    state: Mutex<State>,
}

#[derive(Default, Clone)]
struct State {
    core: Option<Vec<Resource>>,
    all: Option<Vec<Resource>>,
}

async fn get_json<T: serde::de::DeserializeOwned>(
    client: &kube::Client,
    path: &str,
) -> Result<T, Error> {
    let req = http::Request::get(path)
        .body(Vec::new())
        .map_err(Error::other)?;
    Ok(client.request(req).await?)
}

fn resources_of(list: ResourceList) -> Vec<Resource> {
    let (group, version) = match list.group_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), list.group_version.clone()),
    };
    list.resources
        .into_iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| Resource {
            group: group.clone(),
            version: version.clone(),
            plural: r.name,
            singular: r.singular_name,
            kind: r.kind,
            namespaced: r.namespaced,
            short_names: r.short_names,
            verbs: r.verbs,
        })
        .collect()
}

impl Cache {
    fn snapshot(&self) -> State {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    async fn core(&self, client: &kube::Client) -> Result<Vec<Resource>, Error> {
        if let Some(core) = self.snapshot().core {
            return Ok(core);
        }
        let list: ResourceList = get_json(client, "/api/v1").await?;
        let core = resources_of(list);
        if let Ok(mut s) = self.state.lock() {
            s.core = Some(core.clone());
        }
        Ok(core)
    }

    /// Every resource of every group, preferred versions first.
    pub async fn all(&self, client: &kube::Client) -> Result<Vec<Resource>, Error> {
        if let Some(all) = self.snapshot().all {
            return Ok(all);
        }
        let mut all = self.core(client).await?;
        let groups: GroupList = get_json(client, "/apis").await?;
        for group in groups.groups {
            let preferred = group.preferred_version.clone().map(|p| p.group_version);
            let mut versions = group.versions.clone();
            versions.sort_by_key(|v| Some(&v.group_version) != preferred.as_ref());
            for v in versions {
                let path = format!("/apis/{}", v.group_version);
                match get_json::<ResourceList>(client, &path).await {
                    Ok(list) => all.extend(resources_of(list)),
                    Err(err) if err.is_not_found() => {}
                    Err(err) => return Err(err),
                }
            }
        }
        if let Ok(mut s) = self.state.lock() {
            s.all = Some(all.clone());
        }
        Ok(all)
    }

    /// The resource a word on the command line means.
    pub async fn resolve(&self, client: &kube::Client, word: &str) -> Result<Resource, Error> {
        // `plural.group` or `plural.version.group` name the group explicitly.
        if let Some((name, rest)) = word.split_once('.') {
            let all = self.all(client).await?;
            let found = all.iter().find(|r| {
                r.matches(name)
                    && (r.group == rest
                        || format!("{}.{}", r.version, r.group) == rest
                        || (r.group.is_empty() && r.version == rest))
            });
            if let Some(r) = found {
                return Ok(r.clone());
            }
        } else {
            if let Some(r) = self
                .core(client)
                .await?
                .into_iter()
                .find(|r| r.matches(word))
            {
                return Ok(r);
            }
            let all = self.all(client).await?;
            if let Some(r) = all.iter().find(|r| r.matches(word)) {
                return Ok(r.clone());
            }
        }
        Err(Error::other(format!(
            "the server doesn't have a resource type \"{word}\""
        )))
    }

    /// The resource of a manifest's `apiVersion` and `kind`.
    pub async fn for_kind(
        &self,
        client: &kube::Client,
        api_version: &str,
        kind: &str,
    ) -> Result<Resource, Error> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let pick = |list: &[Resource]| {
            list.iter()
                .find(|r| r.group == group && r.version == version && r.kind == kind)
                .cloned()
        };
        if group.is_empty() {
            if let Some(r) = pick(&self.core(client).await?) {
                return Ok(r);
            }
        }
        pick(&self.all(client).await?).ok_or_else(|| {
            Error::other(format!(
                "resource mapping not found for kind \"{kind}\" in version \"{api_version}\"; \
                 ensure CRDs are installed first"
            ))
        })
    }
}

/// `kubectl api-resources`
/// One resource per line as `api-resources` lists them: the preferred version only, sorted by
/// group then name.
pub fn one_per_resource(mut all: Vec<Resource>) -> Vec<Resource> {
    let mut seen = std::collections::HashSet::new();
    all.retain(|r| seen.insert((r.group.clone(), r.plural.clone())));
    all.sort_by(|a, b| (&a.group, &a.plural).cmp(&(&b.group, &b.plural)));
    all
}

pub async fn api_resources(ctx: &Context, args: ApiResourcesArgs) -> Result<(), Error> {
    let mut all = one_per_resource(ctx.discovery.all(&ctx.client).await?);
    all.retain(|r| args.namespaced.is_none_or(|n| n == r.namespaced));
    if args.output.as_deref() == Some("name") {
        for r in &all {
            println!("{}", r.qualified_plural());
        }
        return Ok(());
    }
    let mut table = crate::output::Table::default();
    if !args.no_headers {
        table.push(
            ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
                .map(String::from)
                .to_vec(),
        );
    }
    for r in &all {
        table.push(vec![
            r.plural.clone(),
            r.short_names.join(","),
            r.api_version(),
            r.namespaced.to_string(),
            r.kind.clone(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

/// `kubectl api-versions`
pub async fn api_versions(ctx: &Context) -> Result<(), Error> {
    let all = ctx.discovery.all(&ctx.client).await?;
    let mut versions: Vec<String> = all.iter().map(Resource::api_version).collect();
    versions.sort();
    versions.dedup();
    for v in versions {
        println!("{v}");
    }
    Ok(())
}
