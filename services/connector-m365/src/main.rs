use std::process::ExitCode;

fn main() -> ExitCode {
    arkiv_runtime::main("arkiv-connector-m365", |settings, shutdown| async move {
        arkiv_connector_m365::Application::build(&settings)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
}
