use std::process::ExitCode;

fn main() -> ExitCode {
    arkiv_runtime::main("arkiv-connector-google", |settings, shutdown| async move {
        arkiv_connector_google::Application::build(&settings)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
}
