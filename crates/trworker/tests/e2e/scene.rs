//! A browser test's scene: its turn at the browser, a data directory, the server on it and a browser, opened
//! by [`Scene::open`] and closed by [`Scene::close`], so that a test reads as its scenario.

use tokio::sync::{Mutex, MutexGuard};
use trworker::app::AppConfig;

use crate::browser::{chromedriver_or_skip, Browser};
use crate::server::{DataDir, Server, PASSWORD, WORKER};

/// What a browser test runs against. A test borrows the parts (`let Scene { browser, server, .. } =
/// &scene;`), so the turn and the directory live until [`Scene::close`].
///
/// Fields drop in the order written, as the locals they replace did: on a panic the browser ends first,
/// then the server, then the directory goes, and the next test's turn comes last.
pub struct Scene {
    pub browser: Browser,
    pub server: Server,
    /// The server's data directory: a restart opens the same one.
    pub dir: DataDir,
    /// Browser tests run one at a time: two cores cannot run several Chromiums briskly.
    _turn: MutexGuard<'static, ()>,
}

impl Scene {
    /// Waits for this test's turn, then starts a server on a fresh data directory named after `name` and
    /// launches the browser (on no page yet); `None` when chromedriver is missing and the test may skip
    /// (see [`chromedriver_or_skip`]).
    pub async fn open(name: &str) -> Option<Scene> {
        Scene::open_with(name, |_| {}).await
    }

    /// As [`Scene::open`], with the browser on the page, which shows the sign-in form.
    pub async fn at_sign_in(name: &str) -> Option<Scene> {
        Scene::at_sign_in_with(name, |_| {}).await
    }

    /// As [`Scene::at_sign_in`], with the app's configuration `adjust`ed.
    pub async fn at_sign_in_with(name: &str, adjust: impl FnOnce(&mut AppConfig)) -> Option<Scene> {
        let scene = Scene::open_with(name, adjust).await?;
        scene.browser.open(&scene.server.page()).await;
        scene.browser.wait_xpath("the sign-in form", "//*[@id='signin'][not(@hidden)]").await;
        Some(scene)
    }

    /// As [`Scene::at_sign_in`], then signs in as the demo worker (who is Offline).
    pub async fn signed_in(name: &str) -> Option<Scene> {
        let scene = Scene::at_sign_in(name).await?;
        scene.browser.sign_in_ok(WORKER, PASSWORD).await;
        Some(scene)
    }

    /// As [`Scene::open`], then signs in as the demo worker and goes online: the page shows it Available.
    pub async fn online(name: &str) -> Option<Scene> {
        Scene::online_with(name, |_| {}).await
    }

    /// As [`Scene::online`], with the app's configuration `adjust`ed.
    pub async fn online_with(name: &str, adjust: impl FnOnce(&mut AppConfig)) -> Option<Scene> {
        let scene = Scene::open_with(name, adjust).await?;
        scene.browser.open(&scene.server.page()).await;
        scene.browser.sign_in_ok(WORKER, PASSWORD).await;
        scene.browser.press("Go online").await;
        scene.browser.wait_activity("Available").await;
        Some(scene)
    }

    async fn open_with(name: &str, adjust: impl FnOnce(&mut AppConfig)) -> Option<Scene> {
        let driver = chromedriver_or_skip()?;
        let turn = turn().await;
        let dir = DataDir::new(name);
        let server = Server::start_with(&dir, 0, adjust).await;
        let browser = Browser::launch(&driver).await;
        Some(Scene { browser, server, dir, _turn: turn })
    }

    /// Ends the browser, then stops the server (which saves the engine's state).
    pub async fn close(self) {
        self.browser.close().await;
        self.server.stop().await;
    }
}

/// Serialises the browser tests of this binary.
async fn turn() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::const_new(());
    LOCK.lock().await
}
