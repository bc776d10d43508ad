"""Screenshot of the playground page (docs/img/playground.png) for a run, in headless Chromium.

    PYTHONPATH=src python benchmarks/playground_screenshot.py RUN_DIR docs/img/playground.png \\
        [--story "Mary went to the kitchen.|..." --question "Where is Mary?" | --text "..."]

Serves the run on a free loopback port (uvicorn in a thread), fills the page's form, presses
Run, waits for the answer and saves the window.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from seqlab.evaluation import LoadedRun
from seqlab.serve.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--text", help="the sentence or prompt")
    parser.add_argument("--story", help="bAbI: statements separated by |")
    parser.add_argument("--question", help="bAbI: the question")
    args = parser.parse_args()
    service = create_app(LoadedRun.load(args.run_dir))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(service, port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--window-size=1000,900"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "chromium"
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 20)
        wait.until(ready.visibility_of_element_located((By.ID, "form")))
        if args.story is not None:
            area = driver.find_element(By.ID, "story")
            area.clear()
            area.send_keys("\n".join(s.strip() for s in args.story.split("|")))
        text = args.question if args.question is not None else args.text
        if text is not None:
            box = driver.find_element(By.ID, "input")
            box.clear()
            box.send_keys(text)
        driver.find_element(By.ID, "run").click()
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#output > *")))
        time.sleep(0.3)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        server.should_exit = True


if __name__ == "__main__":
    main()
