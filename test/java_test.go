package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/test/harness"
)

// javaDir holds the Maven project with the Java scenarios; `make deps`
// compiles them to target/classes and copies Kafka's jars to target/lib.
func javaDir() string { return filepath.Join(harness.RepoRoot(), "test", "clients", "java") }

// javaClasspath is the scenarios' classes and every jar from Maven Central.
func javaClasspath(t testing.TB) string {
	t.Helper()
	dir := javaDir()
	classes := filepath.Join(dir, "target", "classes")
	jars, _ := filepath.Glob(filepath.Join(dir, "target", "lib", "*.jar"))
	if len(jars) == 0 {
		t.Fatalf("no Kafka jars in %s/target/lib: run make deps", dir)
	}
	if _, err := os.Stat(classes); err != nil {
		t.Fatalf("the Java scenarios are not compiled (%v): run make deps", err)
	}
	return classes + string(os.PathListSeparator) + filepath.Join(dir, "target", "lib", "*")
}

// javaCmd runs a main class (a scenario of ours or one of Kafka's tools)
// on the classpath.
func javaCmd(t testing.TB, mainClass string, args ...string) *exec.Cmd {
	t.Helper()
	full := append([]string{"-cp", javaClasspath(t),
		"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
		"-Xshare:auto", "-XX:TieredStopAtLevel=1", mainClass}, args...)
	return exec.Command("java", full...)
}

// runJava runs a main class to completion within d and returns what it
// printed on stdout; a non-zero exit or a timeout fails the test with its
// stderr.
func runJava(t testing.TB, d time.Duration, mainClass string, args ...string) string {
	t.Helper()
	out, errOut, err := runJavaErr(t, d, mainClass, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", mainClass, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// runJavaErr is runJava for a run that may fail: the caller checks.
func runJavaErr(t testing.TB, d time.Duration, mainClass string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := javaCmd(t, mainClass, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatalf("start java: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s did not finish in %v\nstdout:\n%s\nstderr:\n%s", mainClass, strings.Join(args, " "), d, o.String(), e.String())
	}
	return o.String(), e.String(), err
}
