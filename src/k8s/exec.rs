//! Running a command in a container through the API server's `pods/exec`
//! subresource (a websocket carrying the `v5.channel.k8s.io` or
//! `v4.channel.k8s.io` stream protocol).
//!
//! Owns: feeding stdin, collecting stdout and stderr, and reading the exit
//! code out of the final `Status`. Does not own: what the command is for.

use std::pin::pin;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{Kube, KubeError, classify};

/// What a command run in a container printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Everything written to stdout (invalid UTF-8 replaced).
    pub stdout: String,
    /// Everything written to stderr (invalid UTF-8 replaced).
    pub stderr: String,
    /// The exit code (0 for success).
    pub exit_code: i32,
}

/// The `reason` of the final `Status` of a command that exited non-zero.
const NON_ZERO_EXIT_CODE: &str = "NonZeroExitCode";
/// The `reason` of the `Status` cause that carries the exit code.
const EXIT_CODE_CAUSE: &str = "ExitCode";

/// The exit code a remote command's final `Status` (channel 3) reports.
///
/// `Success` is 0; a `Failure` with reason `NonZeroExitCode` carries the
/// code in its `ExitCode` cause. Any other `Failure` (the container is not
/// there, the runtime could not start the command) is an error with the
/// status message.
pub fn exit_code_of(status: &Status) -> Result<i32, String> {
    match status.status.as_deref() {
        Some("Success") => Ok(0),
        Some("Failure") if status.reason.as_deref() == Some(NON_ZERO_EXIT_CODE) => {
            let cause = status
                .details
                .as_ref()
                .and_then(|d| d.causes.as_ref())
                .into_iter()
                .flatten()
                .find(|c| c.reason.as_deref() == Some(EXIT_CODE_CAUSE))
                .ok_or_else(|| {
                    format!(
                        "the command failed without an exit code: {}",
                        status.message.as_deref().unwrap_or("no message")
                    )
                })?;
            let text = cause.message.as_deref().unwrap_or("");
            text.trim()
                .parse()
                .map_err(|_| format!("the command's exit code is not a number: {text:?}"))
        }
        Some("Failure") => Err(
            match (status.message.as_deref(), status.reason.as_deref()) {
                (Some(m), _) if !m.is_empty() => m.to_owned(),
                (_, Some(r)) if !r.is_empty() => r.to_owned(),
                _ => "the command failed, with no message".to_owned(),
            },
        ),
        other => Err(format!(
            "the final status of the command is {:?}, neither Success nor Failure",
            other.unwrap_or("")
        )),
    }
}

/// Reads `reader` to its end; what could be read when it fails.
async fn drain(reader: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(mut r) = reader {
        let _ = r.read_to_end(&mut out).await;
    }
    out
}

/// Runs `main` while driving `side` too; `side` is dropped, maybe
/// unfinished, once `main` is done.
async fn alongside<T>(main: impl Future<Output = T>, side: impl Future<Output = ()>) -> T {
    let side = async {
        side.await;
        std::future::pending::<T>().await
    };
    tokio::select! {
        t = main => t,
        t = side => t,
    }
}

impl Kube {
    /// Runs `command` (argv, no shell) in `container` of pod `namespace/pod`,
    /// feeding `stdin` when given, and waits at most `timeout`.
    ///
    /// A command that runs and exits non-zero is `Ok` with its exit code;
    /// errors are for commands that could not be run or whose end was not
    /// seen. The client's read timeout (30 s for one from [`Kube::connect`])
    /// applies to the stream too: a command that prints nothing for longer
    /// fails with a read timeout.
    pub async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        command: &[&str],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<ExecOutput, KubeError> {
        let what = format!("pod {namespace}/{pod} container {container}");
        let run = self.exec_unbounded(namespace, pod, container, command, stdin, &what);
        if let Ok(result) = tokio::time::timeout(timeout, run).await {
            result
        } else {
            Err(KubeError {
                message: format!(
                    "context `{}`: `{}` in {what} timed out after {} s",
                    self.context,
                    command.join(" "),
                    timeout.as_secs_f64()
                ),
                hint: "the command may still be running in the container; check it there"
                    .to_owned(),
            })
        }
    }

    async fn exec_unbounded(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        command: &[&str],
        stdin: Option<&[u8]>,
        what: &str,
    ) -> Result<ExecOutput, KubeError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = AttachParams::default()
            .container(container)
            .stdin(stdin.is_some())
            .stdout(true)
            .stderr(true);
        let mut process = api
            .exec(pod, command.iter().copied(), &params)
            .await
            .map_err(|e| {
                let mut error = classify(&self.context, what, &e);
                if matches!(&e, kube::Error::Api(s) if s.code == 403) {
                    "grant the `create` verb on `pods/exec` in the pod's namespace"
                        .clone_into(&mut error.hint);
                }
                error
            })?;
        let status = process.take_status();
        let status = async move {
            match status {
                Some(s) => s.await,
                None => None,
            }
        };
        let writer = process.stdin();
        let feed = async move {
            if let (Some(mut w), Some(bytes)) = (writer, stdin) {
                // A write error means the stream ended early; the status says why.
                let _ = w.write_all(bytes).await;
                let _ = w.shutdown().await;
            }
        };
        let (out, err) = (process.stdout(), process.stderr());
        // Stdin is fed while the output is read, but not waited for: a
        // command may end without reading all of it.
        let outputs = alongside(async { tokio::join!(drain(out), drain(err)) }, feed);
        let failed = |message: String| KubeError {
            message: format!(
                "context `{}`: `{}` in {what}: {message}",
                self.context,
                command.join(" ")
            ),
            hint: "check the pod and container with `kubectl describe pod`".to_owned(),
        };
        let mut outputs = pin!(outputs);
        let mut status = pin!(status);
        // The output ends when the stream does, after the status; but when
        // the stream fails, kube leaves the output open, so the end of the
        // stream is watched for too (the status sender goes away with it).
        let (status, (out, err)) = tokio::select! {
            outputs = &mut outputs => (status.await, outputs),
            status = &mut status => match status {
                Some(s) => (Some(s), outputs.await),
                None => match process.join().await {
                    Err(e) => return Err(failed(format!("the exec stream failed: {e}"))),
                    Ok(()) => (None, outputs.await),
                },
            },
        };
        let Some(status) = status else {
            return Err(failed(
                "the API server closed the stream without an exit status".to_owned(),
            ));
        };
        let exit_code = exit_code_of(&status).map_err(failed)?;
        Ok(ExecOutput {
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            exit_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(v: serde_json::Value) -> Status {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn success_is_zero() {
        let s = status(json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Success"}));
        assert_eq!(exit_code_of(&s), Ok(0));
    }

    #[test]
    fn non_zero_exit_code_comes_from_the_exit_code_cause() {
        let s = status(json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code: error executing command [sh -c exit 2], exit code 2",
            "details": {"causes": [{"reason": "Other", "message": "7"},
                                   {"reason": "ExitCode", "message": "2"}]}}));
        assert_eq!(exit_code_of(&s), Ok(2));
    }

    #[test]
    fn non_zero_exit_code_without_a_cause_is_an_error() {
        let s = status(json!({"status": "Failure", "reason": "NonZeroExitCode",
                              "message": "command terminated"}));
        assert_eq!(
            exit_code_of(&s),
            Err("the command failed without an exit code: command terminated".to_owned())
        );
    }

    #[test]
    fn an_exit_code_that_is_not_a_number_is_an_error() {
        let s = status(json!({"status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "two"}]}}));
        assert_eq!(
            exit_code_of(&s),
            Err("the command's exit code is not a number: \"two\"".to_owned())
        );
    }

    #[test]
    fn other_failures_carry_their_message() {
        let s = status(
            json!({"status": "Failure", "reason": "BadRequest", "code": 400,
            "message": "container sidecar is not valid for pod foo-pg-1"}),
        );
        assert_eq!(
            exit_code_of(&s),
            Err("container sidecar is not valid for pod foo-pg-1".to_owned())
        );
        let s = status(json!({"status": "Failure", "reason": "InternalError"}));
        assert_eq!(exit_code_of(&s), Err("InternalError".to_owned()));
    }

    #[test]
    fn a_status_neither_success_nor_failure_is_an_error() {
        let s = status(json!({"kind": "Status"}));
        assert_eq!(
            exit_code_of(&s),
            Err("the final status of the command is \"\", neither Success nor Failure".to_owned())
        );
    }
}
