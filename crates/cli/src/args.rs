//! The command line: kubectl's commands and flags, with help texts of our own.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "kubectl",
    about = "kubectl controls a Kubernetes cluster (kubelite's own build of it).",
    long_about = "kubectl controls a Kubernetes cluster: it reads and changes the objects the API \
                  server keeps (pods, nodes, namespaces, events, …) and connects you to running \
                  containers.\n\nIt reads the cluster's address and your credentials from a \
                  kubeconfig: --kubeconfig, else $KUBECONFIG, else ~/.kube/config, else the \
                  local kubelite server's admin kubeconfig.",
    disable_version_flag = true
)]
pub struct Kubectl {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// The kubeconfig file to use.
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use instead of the current one.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace to work in, instead of the context's.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// How long to wait for one request to the server before giving up (0: forever).
    #[arg(long = "request-timeout", global = true, value_name = "DURATION")]
    pub request_timeout: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show objects: a table by default, or YAML, JSON, names or a JSONPath template.
    #[command(
        override_usage = "kubectl get [(-o|--output=)json|yaml|name|wide|jsonpath=...] (TYPE[.VERSION][.GROUP] [NAME ...] | TYPE/NAME ...) [flags] [options]",
        after_help = "Examples:\n  # Every pod in the current namespace, as a table\n  kubectl get pods\n\n  # One pod, as YAML\n  kubectl get pod web -o yaml\n\n  # Follow the pods as they change\n  kubectl get pods -w"
    )]
    Get(GetArgs),
    /// Create objects from files (YAML or JSON, several documents allowed) or standard input.
    #[command(
        override_usage = "kubectl create -f FILENAME [options]",
        after_help = "Examples:\n  # The pod described in pod.yaml\n  kubectl create -f pod.yaml\n\n  # Whatever arrives on standard input\n  cat pod.json | kubectl create -f -"
    )]
    Create(FileArgs),
    /// Create objects, or bring existing ones in line with the files (client-side apply).
    #[command(
        override_usage = "kubectl apply -f FILENAME [options]",
        after_help = "Examples:\n  # Create what pod.yaml describes, or bring the live pod in line with it\n  kubectl apply -f pod.yaml\n\n  # Every manifest in a directory\n  kubectl apply -f manifests/"
    )]
    Apply(FileArgs),
    /// Delete objects by type and name, by label, every one of a type, or those in files.
    #[command(
        override_usage = "kubectl delete ([-f FILENAME] | TYPE [(NAME | -l label | --all)]) [options]",
        after_help = "Examples:\n  # One pod, waiting until it is gone\n  kubectl delete pod web\n\n  # Every pod labelled app=web, at once\n  kubectl delete pods -l app=web --grace-period=0 --force"
    )]
    Delete(DeleteArgs),
    /// Show an object in detail, with its recent events.
    #[command(
        override_usage = "kubectl describe (-f FILENAME | TYPE [NAME_PREFIX | -l label] | TYPE/NAME) [options]",
        after_help = "Examples:\n  # A pod: its containers, their states and restarts, and what happened to it\n  kubectl describe pod web\n\n  # Every node\n  kubectl describe nodes"
    )]
    Describe(DescribeArgs),
    /// Print the logs of a container in a pod.
    #[command(
        override_usage = "kubectl logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER] [options]",
        after_help = "Examples:\n  # The log of the pod's only container, following it\n  kubectl logs -f web\n\n  # What container two wrote before its last restart\n  kubectl logs web -c two -p"
    )]
    Logs(LogsArgs),
    /// Run a command in a container.
    #[command(
        override_usage = "kubectl exec (POD | TYPE/NAME) [-c CONTAINER] [flags] -- COMMAND [args...] [options]",
        after_help = "Examples:\n  # A shell in container one, with a terminal\n  kubectl exec -it web -c one -- sh\n\n  # One command; its exit code becomes kubectl's\n  kubectl exec web -- ls /"
    )]
    Exec(ExecArgs),
    /// Connect to the output (and, with -i, the input) of a running container.
    #[command(override_usage = "kubectl attach (POD | TYPE/NAME) -c CONTAINER [options]")]
    Attach(AttachArgs),
    /// Wait until objects meet a condition: --for=condition=Ready, --for=delete, or
    /// --for=jsonpath='{.status.phase}'=Running.
    #[command(
        override_usage = "kubectl wait ([-f FILENAME] | resource.group/resource.name | resource.group [(-l label | --all)]) [--for=delete|--for condition=available|--for=jsonpath='{}'=value] [options]"
    )]
    Wait(WaitArgs),
    /// List events, oldest first.
    #[command(
        override_usage = "kubectl events [(-o|--output=)json|yaml|name] [--for TYPE/NAME] [--watch] [options]"
    )]
    Events(EventsArgs),
    /// Forward local ports to a pod.
    #[command(
        name = "port-forward",
        override_usage = "kubectl port-forward TYPE/NAME [options] [LOCAL_PORT:]REMOTE_PORT [...[LOCAL_PORT_N:]REMOTE_PORT_N]",
        after_help = "Examples:\n  # Local port 8080 to the pod port 8080, and a free local port to 9000\n  kubectl port-forward web 8080 :9000"
    )]
    PortForward(PortForwardArgs),
    /// Edit an object in your editor and save it back to the server.
    #[command(
        override_usage = "kubectl edit (RESOURCE/NAME | -f FILENAME) [options]",
        after_help = "Examples:\n  # Opens the pod in $KUBE_EDITOR (else $EDITOR, else vi); saving sends the change\n  kubectl edit pod web"
    )]
    Edit(EditArgs),
    /// Add, change or remove labels of objects.
    #[command(
        override_usage = "kubectl label [--overwrite] (-f FILENAME | TYPE NAME) KEY_1=VAL_1 ... KEY_N=VAL_N [options]",
        after_help = "Examples:\n  # Add a label, then remove it\n  kubectl label pod web tier=front\n  kubectl label pod web tier-"
    )]
    Label(LabelArgs),
    /// Add, change or remove annotations of objects.
    #[command(
        override_usage = "kubectl annotate [--overwrite] (-f FILENAME | TYPE NAME) KEY_1=VAL_1 ... KEY_N=VAL_N [options]"
    )]
    Annotate(LabelArgs),
    /// Change fields of an object with a strategic merge, JSON merge or JSON patch.
    #[command(
        override_usage = "kubectl patch (-f FILENAME | TYPE NAME) [-p PATCH|--patch-file FILE] [options]"
    )]
    Patch(PatchArgs),
    /// Start a pod running one image.
    #[command(
        override_usage = "kubectl run NAME --image=image [--env=\"key=value\"] [--port=port] [--restart=Always] -- [COMMAND] [args...] [options]"
    )]
    Run(RunArgs),
    /// Describe the fields of a resource, from the server's OpenAPI schema.
    #[command(
        override_usage = "kubectl explain TYPE[.FIELD...] [options]",
        after_help = "Examples:\n  # What a pod is, and its top-level fields\n  kubectl explain pod\n\n  # One field deep inside\n  kubectl explain pod.spec.containers.image"
    )]
    Explain(ExplainArgs),
    /// Mark a node unschedulable.
    #[command(override_usage = "kubectl cordon NODE [options]")]
    Cordon(CordonArgs),
    /// Mark a node schedulable again.
    #[command(override_usage = "kubectl uncordon NODE [options]")]
    Uncordon(CordonArgs),
    /// Cordon a node and evict its pods, as their disruption budgets allow.
    #[command(
        override_usage = "kubectl drain NODE [options]",
        after_help = "Examples:\n  # Evict every pod, those of no controller too\n  kubectl drain node-1 --ignore-daemonsets --force"
    )]
    Drain(DrainArgs),
    /// List the resource types the server serves.
    #[command(name = "api-resources")]
    ApiResources(ApiResourcesArgs),
    /// List the API versions the server serves, as group/version.
    #[command(name = "api-versions")]
    ApiVersions,
    /// Print where the control plane is.
    #[command(name = "cluster-info")]
    ClusterInfo,
    /// Print the client's version, and the server's.
    Version(VersionArgs),
    /// Read and change kubeconfig files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script: bash, zsh or fish.
    #[command(
        after_help = "Examples:\n  # In this bash session\n  source <(kubectl completion bash)"
    )]
    Completion {
        /// bash, zsh or fish
        shell: String,
    },
}

#[derive(Args, Debug, Default)]
pub struct GetArgs {
    /// TYPE [NAME ...], or TYPE/NAME ...
    pub args: Vec<String>,
    /// Output format: json, yaml, name, wide, jsonpath=TEMPLATE, custom-columns=SPEC.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Only objects with these labels (key=value,key!=value,key in (a,b), …).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Only objects whose fields match (for example status.phase=Running).
    #[arg(long = "field-selector")]
    pub field_selector: Option<String>,
    /// In every namespace.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// After listing, keep printing the changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Print only the changes, not the list first.
    #[arg(long = "watch-only")]
    pub watch_only: bool,
    /// With --watch, print the kind of each change (ADDED, MODIFIED, DELETED).
    #[arg(long = "output-watch-events")]
    pub output_watch_events: bool,
    /// Add a LABELS column.
    #[arg(long = "show-labels")]
    pub show_labels: bool,
    /// Leave the header out of tables.
    #[arg(long = "no-headers")]
    pub no_headers: bool,
    /// Sort the list by this JSONPath expression (for example .metadata.name).
    #[arg(long = "sort-by")]
    pub sort_by: Option<String>,
    /// Objects from these files, directories or - (standard input).
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
}

#[derive(Args, Debug)]
pub struct FileArgs {
    /// Files, directories, or - for standard input.
    #[arg(short = 'f', long = "filename", required = true)]
    pub filenames: Vec<String>,
    /// Output format: name prints TYPE/NAME only; yaml or json print what the server stored.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug, Default)]
pub struct DeleteArgs {
    /// TYPE [NAME ...], or TYPE/NAME ...
    pub args: Vec<String>,
    /// Objects from these files, directories or - (standard input).
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Every object of the type in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Only objects with these labels.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// In every namespace.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Seconds the object has to end gracefully (-1: its own default; 0 with --force: at once).
    #[arg(long = "grace-period", default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Delete at once, without waiting for the node to confirm the pod has stopped.
    #[arg(long)]
    pub force: bool,
    /// Wait until the objects are gone before returning.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub wait: bool,
    /// Do not fail when an object does not exist.
    #[arg(long = "ignore-not-found")]
    pub ignore_not_found: bool,
    /// Output format: name prints TYPE/NAME only.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    /// TYPE [NAME_PREFIX ...], or TYPE/NAME
    pub args: Vec<String>,
    /// Only objects with these labels.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// In every namespace.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Show the events of the object.
    #[arg(long = "show-events", default_value_t = true, action = clap::ArgAction::Set)]
    pub show_events: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// POD, or TYPE/NAME, and optionally the container.
    pub args: Vec<String>,
    /// The container (default: the pod's only one, or the one its default-container annotation names).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Keep printing as the container writes.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The previous instance of the container (before its last restart).
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only lines newer than this duration (5s, 2m, 3h).
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines after this RFC 3339 time.
    #[arg(long = "since-time")]
    pub since_time: Option<String>,
    /// Only the last N lines.
    #[arg(long, allow_negative_numbers = true)]
    pub tail: Option<i64>,
    /// Prefix each line with the time it was written.
    #[arg(long)]
    pub timestamps: bool,
    /// Stop after this many bytes.
    #[arg(long = "limit-bytes")]
    pub limit_bytes: Option<i64>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// POD (or TYPE/NAME), then -- and the command.
    #[arg(required = true)]
    pub pod: String,
    /// The command and its arguments.
    #[arg(last = true)]
    pub command: Vec<String>,
    /// The container (default: the pod's first, or the one its default-container annotation names).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass standard input to the command.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Give the command a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Print nothing but the command's own output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct PortForwardArgs {
    /// POD (or TYPE/NAME), then [LOCAL_PORT:]REMOTE_PORT ...
    #[arg(required = true, num_args = 2..)]
    pub args: Vec<String>,
    /// The local addresses to listen on.
    #[arg(long, value_delimiter = ',', default_value = "localhost")]
    pub address: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EditArgs {
    /// TYPE NAME, or TYPE/NAME
    pub args: Vec<String>,
    /// Output format of the object in the editor: yaml or json.
    #[arg(short = 'o', long, default_value = "yaml")]
    pub output: String,
}

#[derive(Args, Debug)]
pub struct LabelArgs {
    /// TYPE NAME (or TYPE/NAME), then KEY=VALUE to set and KEY- to remove.
    #[arg(required = true, num_args = 2..)]
    pub args: Vec<String>,
    /// Replace values that are already set.
    #[arg(long)]
    pub overwrite: bool,
    /// Every object of the type.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct PatchArgs {
    /// TYPE NAME, or TYPE/NAME
    pub args: Vec<String>,
    /// The patch, as JSON or YAML.
    #[arg(short = 'p', long)]
    pub patch: Option<String>,
    /// A file holding the patch.
    #[arg(long = "patch-file")]
    pub patch_file: Option<PathBuf>,
    /// strategic (default), merge or json.
    #[arg(long = "type", default_value = "strategic")]
    pub patch_type: String,
    /// Patch this subresource (status) instead of the object.
    #[arg(long)]
    pub subresource: Option<String>,
    /// Output format: name, yaml or json.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct CordonArgs {
    /// The node.
    pub node: String,
    /// none, server (the server checks and changes nothing) or client (nothing is sent).
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: Option<String>,
}

#[derive(Args, Debug)]
pub struct DrainArgs {
    /// The node.
    pub node: String,
    /// Also evict pods of no controller.
    #[arg(long)]
    pub force: bool,
    /// Leave DaemonSet-managed pods where they are.
    #[arg(long = "ignore-daemonsets")]
    pub ignore_daemonsets: bool,
    /// Also evict pods with emptyDir volumes (their data is lost).
    #[arg(long = "delete-emptydir-data")]
    pub delete_emptydir_data: bool,
    /// Only the pods this label selector selects.
    #[arg(long = "pod-selector")]
    pub pod_selector: Option<String>,
    /// Seconds each pod gets to stop; negative: its own grace period.
    #[arg(long = "grace-period", default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// How long to wait before giving up (0: for ever).
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// none, server or client.
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    pub name: String,
    /// The command and arguments to run instead of the image's.
    #[arg(last = true)]
    pub command: Vec<String>,
    /// The image to run.
    #[arg(long, required = true)]
    pub image: String,
    /// Labels of the pod (key=value,...).
    #[arg(short = 'l', long)]
    pub labels: Option<String>,
    /// Environment variables (key=value), one flag each.
    #[arg(long)]
    pub env: Vec<String>,
    /// The port the container serves.
    #[arg(long)]
    pub port: Option<i32>,
    /// Always, OnFailure or Never.
    #[arg(long, default_value = "Always")]
    pub restart: String,
    /// Print the pod instead of creating it: client, or server (validated by the server).
    #[arg(long = "dry-run")]
    pub dry_run: Option<String>,
    /// Output format: name, yaml or json.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// TYPE or TYPE.FIELD.FIELD…
    pub path: String,
    /// Every field below, recursively, without descriptions.
    #[arg(long)]
    pub recursive: bool,
    /// The group/version to explain (default: the preferred one).
    #[arg(long = "api-version")]
    pub api_version: Option<String>,
}

#[derive(Args, Debug)]
pub struct ApiResourcesArgs {
    /// Only namespaced (true) or cluster-wide (false) resources.
    #[arg(long, action = clap::ArgAction::Set)]
    pub namespaced: Option<bool>,
    /// Only names.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Leave the header out.
    #[arg(long = "no-headers")]
    pub no_headers: bool,
}

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Only the client's version.
    #[arg(long)]
    pub client: bool,
    /// yaml or json.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the merged kubeconfig (secrets redacted unless --raw).
    View {
        /// Show certificates and keys.
        #[arg(long)]
        raw: bool,
        /// Only what the current context uses.
        #[arg(long)]
        minify: bool,
        /// yaml or json.
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Print the current context's name.
    #[command(name = "current-context")]
    CurrentContext,
    /// Make a context the current one.
    #[command(name = "use-context")]
    UseContext { name: String },
    /// Change a context's settings (with --current, the current one's); --namespace sets its
    /// namespace.
    #[command(name = "set-context")]
    SetContext {
        name: Option<String>,
        /// Change the current context.
        #[arg(long)]
        current: bool,
        /// The context's cluster.
        #[arg(long)]
        cluster: Option<String>,
        /// The context's user.
        #[arg(long)]
        user: Option<String>,
    },
    /// List the contexts.
    #[command(name = "get-contexts")]
    GetContexts,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// POD, or TYPE/NAME
    pub pod: String,
    /// The container (default: the pod's first, or the one its default-container annotation names).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass standard input to the container.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// The container has a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Print nothing but the container's own output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    /// TYPE/NAME ..., or TYPE [NAME ...]
    pub args: Vec<String>,
    /// condition=NAME[=VALUE], delete, create, or jsonpath='{EXPR}'=VALUE
    #[arg(long = "for", required = true)]
    pub for_: String,
    /// How long to wait (30s by default).
    #[arg(long, default_value = "30s")]
    pub timeout: String,
    /// Every object of the type.
    #[arg(long)]
    pub all: bool,
    /// Only objects with these labels.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// In every namespace.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Only the events of this object (TYPE/NAME).
    #[arg(long = "for")]
    pub for_: Option<String>,
    /// Only events of these types (Normal, Warning), comma-separated.
    #[arg(long = "types", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Leave the header out.
    #[arg(long = "no-headers")]
    pub no_headers: bool,
    /// Output format: json, yaml or name.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}
