use std::process::ExitCode;

fn main() -> ExitCode {
    arkiv_runtime::main("arkiv-scheduler", |settings, shutdown| async move {
        arkiv_scheduler::Application::build(&settings)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
}
