use std::process::ExitCode;

fn main() -> ExitCode {
    arkiv_runtime::main("arkiv-api", |settings, shutdown| async move {
        arkiv_api::Application::build(&settings)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
}
