"""Without the emulator jar or Java, the stack says what is missing and how to install it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.stack import emulator


def test_missing_jar_names_the_install_commands(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(emulator, "_sdk_roots", lambda: [tmp_path])
    monkeypatch.delenv("PUBSUB_EMULATOR_JAR", raising=False)
    with pytest.raises(emulator.EmulatorMissing) as caught:
        emulator.emulator_command(8085)
    assert "gcloud components install pubsub-emulator" in str(caught.value)
    assert "google-cloud-cli-pubsub-emulator" in str(caught.value)


def test_a_jar_without_java_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    jar = tmp_path / "cloud-pubsub-emulator-0.1-all.jar"
    jar.touch()
    monkeypatch.setenv("PUBSUB_EMULATOR_JAR", str(jar))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    with pytest.raises(emulator.EmulatorMissing, match="no java"):
        emulator.emulator_command(8085)


def test_the_jar_runs_on_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    jar = tmp_path / "cloud-pubsub-emulator-0.1-all.jar"
    jar.touch()
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.touch()
    monkeypatch.setenv("PUBSUB_EMULATOR_JAR", str(jar))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    command = emulator.emulator_command(8123)
    assert (
        command[0] == str(java)
        and command[-3:] == ["-jar", str(jar), "--host=127.0.0.1", "--port=8123"][-3:]
    )
    assert "--host=127.0.0.1" in command and "--port=8123" in command
