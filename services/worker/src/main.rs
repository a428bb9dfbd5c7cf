use std::process::ExitCode;

fn main() -> ExitCode {
    arkiv_runtime::main("arkiv-worker", |settings, shutdown| async move {
        arkiv_worker::Application::build(&settings)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
}
