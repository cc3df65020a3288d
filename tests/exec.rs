//! Running commands in pods through `pods/exec`, end to end: cnpg-ops'
//! client (kube-rs over a websocket) against the fake API server.

mod support;

use std::time::Duration;

use cnpg_ops::k8s::exec::ExecOutput;
use cnpg_ops::k8s::{Kube, KubeError};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use support::fake_kube::{ExecCall, ExecReply, FakeKube};

const NS: &str = "foo-prod";
const TIMEOUT: Duration = Duration::from_secs(20);

struct Setup {
    fake: FakeKube,
    kube: Kube,
    _dir: tempfile::TempDir,
}

impl Setup {
    /// Runs `command` in `container` of the instance `foo-pg-1`.
    async fn exec(
        &self,
        container: &str,
        command: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, KubeError> {
        self.kube
            .exec(NS, "foo-pg-1", container, command, stdin, TIMEOUT)
            .await
    }
}

/// The fake with a healthy Cluster `foo-pg` (one instance, Barman Cloud
/// plugin) and a client for it. The client is built from the written
/// kubeconfig directly: `Kube::connect` reads `KUBECONFIG`, which a test
/// cannot set without racing the other tests of the binary.
async fn setup() -> Setup {
    let fake = FakeKube::start();
    fake.add(json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "foo-pg", "namespace": NS},
        "spec": {"instances": 1, "storage": {"size": "1Gi"},
                 "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
                              "parameters": {"barmanObjectName": "foo-store"}}]},
        "status": {"phase": "Cluster in healthy state"}
    }));
    let dir = tempfile::tempdir().unwrap();
    let path = fake.kubeconfig(dir.path(), "fake");
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(path).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let kube = Kube {
        client: kube::Client::try_from(config).unwrap(),
        context: "fake".to_owned(),
    };
    Setup {
        fake,
        kube,
        _dir: dir,
    }
}

fn output(stdout: &str, stderr: &str, exit_code: i32) -> ExecOutput {
    ExecOutput {
        stdout: stdout.to_owned(),
        stderr: stderr.to_owned(),
        exit_code,
    }
}

#[tokio::test]
async fn a_command_that_succeeds_returns_its_stdout() {
    let s = setup().await;
    s.fake.on_exec(|call| ExecReply {
        stdout: format!("ran {} in {}\n", call.command.join(" "), call.container),
        stderr: String::new(),
        exit_code: 0,
    });
    let out = s
        .exec(
            "postgres",
            &["psql", "-tAc", "select 1; -- a & b = c?"],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        output("ran psql -tAc select 1; -- a & b = c? in postgres\n", "", 0)
    );
    assert_eq!(
        s.fake.exec_calls(),
        vec![ExecCall {
            namespace: NS.to_owned(),
            pod: "foo-pg-1".to_owned(),
            container: "postgres".to_owned(),
            command: vec![
                "psql".to_owned(),
                "-tAc".to_owned(),
                "select 1; -- a & b = c?".to_owned()
            ],
            stdin: Vec::new(),
        }]
    );
    let log = s.fake.request_log();
    let exec = log.iter().find(|r| r.path.ends_with("/exec")).unwrap();
    assert_eq!(exec.method, "GET");
    assert_eq!(exec.path, "/api/v1/namespaces/foo-prod/pods/foo-pg-1/exec");
    assert!(!exec.query.contains("stdin"), "{}", exec.query);
}

#[tokio::test]
async fn a_non_zero_exit_is_ok_with_its_code_and_stderr() {
    let s = setup().await;
    s.fake.on_exec(|_| ExecReply {
        stdout: "partial\n".to_owned(),
        stderr: "ls: cannot access '/nope': No such file or directory\n".to_owned(),
        exit_code: 2,
    });
    let out = s.exec("postgres", &["ls", "/nope"], None).await.unwrap();
    assert_eq!(
        out,
        output(
            "partial\n",
            "ls: cannot access '/nope': No such file or directory\n",
            2
        )
    );
}

#[tokio::test]
async fn without_a_handler_the_command_is_not_found() {
    let s = setup().await;
    let out = s.exec("postgres", &["pg_controldata"], None).await.unwrap();
    assert_eq!(out, output("", "pg_controldata: command not found", 127));
}

#[tokio::test]
async fn stdin_is_delivered_byte_for_byte() {
    let s = setup().await;
    s.fake.on_exec(|call| ExecReply {
        stdout: format!("{} bytes\n", call.stdin.len()),
        stderr: String::from_utf8_lossy(&call.stdin[..16]).into_owned(),
        exit_code: 0,
    });
    // More than the client's 1 KiB pipe, every byte value, not UTF-8.
    let stdin: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let out = s
        .exec("postgres", &["sh", "-c", "cat > /tmp/x"], Some(&stdin))
        .await
        .unwrap();
    assert_eq!(out.stdout, "100000 bytes\n");
    assert_eq!(out.exit_code, 0);
    let calls = s.fake.exec_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].stdin, stdin);
    let log = s.fake.request_log();
    let exec = log.iter().find(|r| r.path.ends_with("/exec")).unwrap();
    assert!(exec.query.contains("stdin=true"), "{}", exec.query);
}

#[tokio::test]
async fn empty_stdin_is_sent_and_closed() {
    let s = setup().await;
    s.fake.on_exec(|call| ExecReply {
        stdout: format!("{} bytes", call.stdin.len()),
        ..ExecReply::default()
    });
    let out = s.exec("postgres", &["wc", "-c"], Some(b"")).await.unwrap();
    assert_eq!(out, output("0 bytes", "", 0));
}

#[tokio::test]
async fn the_barman_cloud_sidecar_is_a_container_of_instance_pods() {
    let s = setup().await;
    s.fake.on_exec(|call| ExecReply {
        stdout: call.container.clone(),
        ..ExecReply::default()
    });
    let out = s
        .exec("plugin-barman-cloud", &["barman-cloud-backup-list"], None)
        .await
        .unwrap();
    assert_eq!(out, output("plugin-barman-cloud", "", 0));
}

#[tokio::test]
async fn an_unknown_container_is_an_error_naming_it() {
    let s = setup().await;
    s.fake.on_exec(|_| panic!("no command runs"));
    // More stdin than the pipes hold: the command never reads it.
    let stdin = vec![b'x'; 1_000_000];
    let err = s
        .exec("sidecar", &["true"], Some(&stdin))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "context `fake`: `true` in pod foo-prod/foo-pg-1 container sidecar: \
         container sidecar is not valid for pod foo-pg-1"
    );
    assert!(s.fake.exec_calls().is_empty());
    assert!(s.fake.hook_panics().is_empty());
}

#[tokio::test]
async fn an_unknown_pod_is_an_error() {
    let s = setup().await;
    let err = s
        .kube
        .exec(NS, "foo-pg-9", "postgres", &["true"], None, TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        err.message.starts_with(
            "context `fake`: request about pod foo-prod/foo-pg-9 container postgres failed: "
        ),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("pods \"foo-pg-9\" not found"),
        "{}",
        err.message
    );
    assert!(s.fake.exec_calls().is_empty());
    assert_eq!(
        s.fake
            .requests()
            .iter()
            .filter(|r| r.ends_with("/exec"))
            .collect::<Vec<_>>(),
        ["GET /api/v1/namespaces/foo-prod/pods/foo-pg-9/exec"]
    );
}

#[tokio::test]
async fn a_forbidden_exec_says_which_permission_is_missing() {
    let s = setup().await;
    s.fake.deny("/exec");
    let err = s.exec("postgres", &["true"], None).await.unwrap_err();
    assert_eq!(
        err.message,
        "context `fake`: access to pod foo-prod/foo-pg-1 container postgres is forbidden: \
         exec is forbidden: injected failure"
    );
    assert_eq!(
        err.hint,
        "grant the `create` verb on `pods/exec` in the pod's namespace"
    );
    assert!(s.fake.exec_calls().is_empty());
}

#[tokio::test]
async fn a_command_that_does_not_end_in_time_is_an_error() {
    let s = setup().await;
    s.fake.on_exec(|_| {
        std::thread::sleep(Duration::from_secs(2));
        ExecReply::default()
    });
    let err = s
        .kube
        .exec(
            NS,
            "foo-pg-1",
            "postgres",
            &["sleep", "2"],
            None,
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "context `fake`: `sleep 2` in pod foo-prod/foo-pg-1 container postgres timed out after 0.3 s"
    );
}

#[tokio::test]
async fn a_stream_that_fails_mid_command_is_an_error() {
    let s = setup().await;
    // A client whose reads time out before the command ends (clients from
    // `Kube::connect` have a read timeout, which applies to the websocket).
    let dir = tempfile::tempdir().unwrap();
    let path = s.fake.kubeconfig(dir.path(), "fake");
    let mut config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(path).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    config.read_timeout = Some(Duration::from_millis(300));
    let kube = Kube {
        client: kube::Client::try_from(config).unwrap(),
        context: "fake".to_owned(),
    };
    s.fake.on_exec(|_| {
        std::thread::sleep(Duration::from_secs(1));
        ExecReply {
            stdout: "too late".to_owned(),
            ..ExecReply::default()
        }
    });
    let err = kube
        .exec(NS, "foo-pg-1", "postgres", &["sleep", "1"], None, TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "context `fake`: `sleep 1` in pod foo-prod/foo-pg-1 container postgres: \
         the exec stream failed: failed to receive a WebSocket message: IO error: timed out"
    );
}

#[tokio::test]
async fn a_stream_cut_without_a_status_is_an_error() {
    let s = setup().await;
    s.fake.on_exec(|_| panic!("the kubelet went away"));
    let err = s.exec("postgres", &["true"], None).await.unwrap_err();
    assert_eq!(
        err.message,
        "context `fake`: `true` in pod foo-prod/foo-pg-1 container postgres: \
         the API server closed the stream without an exit status"
    );
    assert_eq!(s.fake.exec_calls().len(), 1);
    assert_eq!(s.fake.hook_panics(), ["the kubelet went away"]);
}
