//! The traffic a CloudNativePG namespace needs under default deny, written as
//! rules of a NetworkPolicy (networking.k8s.io/v1) or a CiliumNetworkPolicy
//! (cilium.io/v2). `new` renders the whole set; the lint suggests the rule of
//! an allow it finds missing. Both read the same table, so a suggestion is
//! what a new database would have been given.

use serde_json::{Value, json};

/// Where the CloudNativePG operator runs.
pub const OPERATOR_NAMESPACE: &str = "cnpg-system";
/// Where Prometheus runs (for the metrics allow).
pub const MONITORING_NAMESPACE: &str = "monitoring";

/// An allow CloudNativePG needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Name resolution through kube-dns.
    Dns,
    /// barman-cloud reaching the object store.
    ObjectStore {
        /// The endpoint's port.
        port: u32,
        /// Whether the endpoint is a service inside the cluster.
        in_cluster: bool,
    },
    /// Instances reaching each other (replication, instance manager).
    SameNamespaceEgress,
    /// The instance manager reaching the Kubernetes API.
    ApiServer,
    /// The operator reaching the instance manager.
    Operator,
    /// Instances accepting each other.
    SameNamespaceIngress,
    /// Application clients on 5432.
    Application,
    /// Prometheus scraping the exporter.
    Metrics,
}

impl Need {
    /// Whether the allow is an egress rule (else ingress).
    #[must_use]
    pub fn is_egress(self) -> bool {
        matches!(
            self,
            Need::Dns | Need::ObjectStore { .. } | Need::SameNamespaceEgress | Need::ApiServer
        )
    }

    /// Every allow, egress first, in the order a policy lists them.
    #[must_use]
    pub fn all(store_port: u32, store_in_cluster: bool) -> [Need; 8] {
        [
            Need::Dns,
            Need::ObjectStore {
                port: store_port,
                in_cluster: store_in_cluster,
            },
            Need::ApiServer,
            Need::SameNamespaceEgress,
            Need::SameNamespaceIngress,
            Need::Operator,
            Need::Application,
            Need::Metrics,
        ]
    }
}

/// `apiVersion` and `kind` of the policies a CNI reads.
#[must_use]
pub fn policy_kind(cilium: bool) -> (&'static str, &'static str) {
    if cilium {
        ("cilium.io/v2", "CiliumNetworkPolicy")
    } else {
        ("networking.k8s.io/v1", "NetworkPolicy")
    }
}

/// What the rules are written for.
#[derive(Debug, Clone)]
pub struct Allows<'a> {
    /// The `matchLabels` that select the instance pods.
    pub instances: Value,
    /// The service CIDR, for Cilium's `toCIDR` to the API server (plain
    /// NetworkPolicies allow the API ports to any address: most CNIs apply
    /// them after the Service's DNAT, so the service CIDR would never match).
    pub service_cidr: Option<&'a str>,
    /// The clients' namespace (None: any namespace).
    pub app_namespace: Option<&'a str>,
}

impl Allows<'_> {
    /// The rules that grant `need`, in the CNI's dialect.
    #[must_use]
    pub fn rules(&self, need: Need, cilium: bool) -> Vec<Value> {
        if cilium {
            self.cilium(need)
        } else {
            vec![self.kubernetes(need)]
        }
    }

    fn kubernetes(&self, need: Need) -> Value {
        let inst = json!({"matchLabels": self.instances});
        let ns = |n: &str| json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}}});
        let tcp = |p: u32| json!({"port": p, "protocol": "TCP"});
        match need {
            Need::Dns => json!({
                "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            }),
            Need::ObjectStore { port, in_cluster } => {
                let mut rule = json!({"ports": [tcp(port)]});
                if in_cluster {
                    rule["to"] = json!([{"namespaceSelector": {}}]);
                }
                rule
            }
            Need::ApiServer => json!({"ports": [tcp(443), tcp(6443)]}),
            Need::SameNamespaceEgress => {
                json!({"to": [{"podSelector": inst}], "ports": [tcp(5432), tcp(8000)]})
            }
            Need::SameNamespaceIngress => {
                json!({"from": [{"podSelector": inst}], "ports": [tcp(5432), tcp(8000)]})
            }
            Need::Operator => json!({"from": [ns(OPERATOR_NAMESPACE)], "ports": [tcp(8000)]}),
            Need::Application => {
                let clients = match self.app_namespace {
                    Some(a) => json!([ns(a)]),
                    None => json!([{"namespaceSelector": {}}]),
                };
                json!({"from": clients, "ports": [tcp(5432)]})
            }
            Need::Metrics => json!({"from": [ns(MONITORING_NAMESPACE)], "ports": [tcp(9187)]}),
        }
    }

    fn cilium(&self, need: Need) -> Vec<Value> {
        let inst = json!({"matchLabels": self.instances});
        let ns = |n: &str| json!({"matchLabels": {"k8s:io.kubernetes.pod.namespace": n}});
        let ports = |ps: &[(u32, &str)]| {
            let ps: Vec<Value> = ps
                .iter()
                .map(|(p, proto)| json!({"port": p.to_string(), "protocol": proto}))
                .collect();
            json!([{ "ports": ps }])
        };
        let api = ports(&[(443, "TCP"), (6443, "TCP")]);
        match need {
            Need::Dns => vec![json!({
                "toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system",
                                                 "k8s:k8s-app": "kube-dns"}}],
                "toPorts": ports(&[(53, "ANY")]),
            })],
            Need::ObjectStore { port, in_cluster } => {
                let entity = if in_cluster { "cluster" } else { "world" };
                vec![json!({"toEntities": [entity], "toPorts": ports(&[(port, "TCP")])})]
            }
            Need::ApiServer => {
                let mut out = vec![json!({"toEntities": ["kube-apiserver"], "toPorts": api})];
                if let Some(c) = self.service_cidr {
                    out.push(json!({"toCIDR": [c], "toPorts": api}));
                }
                out
            }
            Need::SameNamespaceEgress => vec![
                json!({"toEndpoints": [inst], "toPorts": ports(&[(5432, "TCP"), (8000, "TCP")])}),
            ],
            Need::SameNamespaceIngress => vec![
                json!({"fromEndpoints": [inst], "toPorts": ports(&[(5432, "TCP"), (8000, "TCP")])}),
            ],
            Need::Operator => vec![json!({
                "fromEndpoints": [ns(OPERATOR_NAMESPACE)],
                "toPorts": ports(&[(8000, "TCP")]),
            })],
            Need::Application => vec![match self.app_namespace {
                Some(a) => json!({"fromEndpoints": [ns(a)], "toPorts": ports(&[(5432, "TCP")])}),
                None => json!({"fromEntities": ["cluster"], "toPorts": ports(&[(5432, "TCP")])}),
            }],
            Need::Metrics => vec![json!({
                "fromEndpoints": [ns(MONITORING_NAMESPACE)],
                "toPorts": ports(&[(9187, "TCP")]),
            })],
        }
    }

    /// The spec of a policy on the instances holding `rules` of one direction.
    #[must_use]
    pub fn spec(&self, cilium: bool, egress: bool, rules: &[Value]) -> Value {
        let key = if egress { "egress" } else { "ingress" };
        if cilium {
            json!({"endpointSelector": {"matchLabels": self.instances}, key: rules})
        } else {
            let kind = if egress { "Egress" } else { "Ingress" };
            json!({"podSelector": {"matchLabels": self.instances}, "policyTypes": [kind], key: rules})
        }
    }

    /// The spec of a policy that grants `need` alone.
    #[must_use]
    pub fn spec_for(&self, need: Need, cilium: bool) -> Value {
        self.spec(cilium, need.is_egress(), &self.rules(need, cilium))
    }

    /// The policies of `namespace`: a default deny first when `deny`, then one
    /// egress and one ingress policy, named after `cluster`, granting `needs`.
    #[must_use]
    pub fn policies(
        &self,
        namespace: &str,
        cluster: &str,
        cilium: bool,
        deny: bool,
        needs: &[Need],
    ) -> Vec<Value> {
        let (api, kind) = policy_kind(cilium);
        let doc = |name: &str, spec: Value| {
            json!({"apiVersion": api, "kind": kind,
                   "metadata": {"name": name, "namespace": namespace},
                   "spec": spec})
        };
        let mut out = Vec::new();
        if deny {
            let spec = if cilium {
                json!({"endpointSelector": {}, "ingress": [{}], "egress": [{}]})
            } else {
                json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
            };
            out.push(doc("default-deny", spec));
        }
        for egress in [true, false] {
            let rules: Vec<Value> = needs
                .iter()
                .filter(|n| n.is_egress() == egress)
                .flat_map(|&n| self.rules(n, cilium))
                .collect();
            if !rules.is_empty() {
                let name = format!("{cluster}-{}", if egress { "egress" } else { "ingress" });
                out.push(doc(&name, self.spec(cilium, egress, &rules)));
            }
        }
        out
    }
}
