//! Signing in, reload, two tabs of one worker, and a server restart under a signed-in page.

use crate::browser::{chromedriver_or_skip, Browser};
use crate::server::{DataDir, Server, PASSWORD, WORKER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_a_wrong_password_then_the_right_one() {
    let Some(driver) = chromedriver_or_skip() else { return };
    let _one = crate::exclusive().await;
    let dir = DataDir::new("signin");
    let server = Server::start(&dir, 0).await;
    let browser = Browser::launch(&driver).await;
    browser.open(&server.page()).await;

    // The workspace's name is there before anyone signs in.
    browser.wait_text("workspace", "writers").await;

    browser.sign_in(WORKER, "not the password").await;
    let error = browser
        .wait_xpath("a sign-in error", "//*[@data-testid='signin-error'][normalize-space(.)!='']")
        .await;
    let message = error.text().await.expect("error text");
    assert!(!message.contains(PASSWORD), "the error must not reveal the password: {message}");
    assert_eq!(browser.count("#desk:not([hidden])").await, 0, "a wrong password must not open the desk");

    browser.sign_in_ok(WORKER, PASSWORD).await;
    browser.wait_xpath("the worker's name", &format!("//*[@data-testid='worker-name'][.='{WORKER}']")).await;
    browser.wait_activity("Offline").await;
    browser.wait_gone("the sign-in error", "//*[@data-testid='signin-error'][normalize-space(.)!='']").await;
    assert_eq!(browser.count("#signin:not([hidden])").await, 0, "the sign-in form is hidden once signed in");

    browser.close().await;
    server.stop().await;
}
