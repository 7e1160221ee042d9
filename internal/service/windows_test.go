package service

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWindowsServices(t *testing.T) {
	o := Options{StateDir: `C:\ProgramData\Sallyport\connector`, Binary: `C:\Program Files\Sallyport\sallyport.exe`}
	svcs, err := WindowsServices(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 2 {
		t.Fatalf("got %d services, want the connector and the updater", len(svcs))
	}
	conn, upd := svcs[0], svcs[1]
	if conn.Name != "SallyportConnector" || conn.Account != `NT AUTHORITY\LocalService` || !conn.DelayedAutoStart || !conn.ServiceSID {
		t.Errorf("connector service = %+v", conn)
	}
	if !slices.Equal(conn.Args, []string{"connector", "run", "--dir", `C:\ProgramData\Sallyport\connector`}) {
		t.Errorf("connector args = %q", conn.Args)
	}
	if !slices.Equal(conn.Recovery, []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second}) || !conn.RecoveryOnError || conn.ResetPeriod <= 0 {
		t.Errorf("connector recovery = %v (on error %v, reset %v), want restart after 2 s three times", conn.Recovery, conn.RecoveryOnError, conn.ResetPeriod)
	}
	if upd.Name != "SallyportUpdater" || upd.Account != "LocalSystem" || upd.Binary != o.Binary {
		t.Errorf("updater service = %+v", upd)
	}
	if !slices.Equal(upd.Args, []string{"connector", "updater", "--dir", `C:\ProgramData\Sallyport\connector`, "--updater-dir", `C:\ProgramData\Sallyport\connector-updater`, "--binary", `C:\Program Files\Sallyport\sallyport.exe`, "--restart", "windows:SallyportConnector"}) {
		t.Errorf("updater args = %q", upd.Args)
	}
	if _, err := ParseRestartSpec(upd.Args[len(upd.Args)-1]); err != nil {
		t.Errorf("the updater's --restart is not a valid spec: %v", err)
	}

	o.NoUpdater = true
	if svcs, _ := WindowsServices(o); len(svcs) != 1 || svcs[0].Name != WindowsConnector {
		t.Errorf("NoUpdater: got %+v, want the connector only", svcs)
	}
}

func TestWindowsDefaults(t *testing.T) {
	o := Options{}.Defaults("windows")
	if !strings.HasSuffix(o.StateDir, `\Sallyport\connector`) || !windowsAbs(o.StateDir) {
		t.Errorf("default state directory %q", o.StateDir)
	}
	if !strings.HasSuffix(o.Binary, `\Sallyport\sallyport.exe`) || !windowsAbs(o.Binary) {
		t.Errorf("default binary %q", o.Binary)
	}
	if o.User != WindowsLocalService {
		t.Errorf("default account %q", o.User)
	}
}

func TestWindowsServicesRefuse(t *testing.T) {
	for _, o := range []Options{
		{User: "sallyport"}, // a Linux user: would need a password on Windows
		{User: `CONTOSO\svc-sallyport`},
		{StateDir: `relative\dir`},
		{StateDir: "/var/lib/sallyport/connector"},
		{Binary: `C:\Program Files\"x"\sallyport.exe`},
	} {
		if _, err := WindowsServices(o); err == nil {
			t.Errorf("WindowsServices(%+v) accepted options it must refuse", o)
		}
	}
	for _, acct := range []string{WindowsLocalService, WindowsNetworkService, WindowsLocalSystem} {
		if _, err := WindowsServices(Options{User: acct}); err != nil {
			t.Errorf("WindowsServices with account %s: %v", acct, err)
		}
	}
}

func TestWindowsStateDirSDDL(t *testing.T) {
	sid := "S-1-5-80-1234-5678"
	got := WindowsStateDirSDDL(sid)
	// Protected (no inheritance from %ProgramData%, where Users may read),
	// SYSTEM, Administrators and the service, inherited by files and folders.
	want := "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;S-1-5-80-1234-5678)"
	if got != want {
		t.Errorf("WindowsStateDirSDDL = %s, want %s", got, want)
	}
	if strings.Contains(WindowsStateDirSDDL(""), "(A;OICI;FA;;;)") {
		t.Error("an empty service SID gave an entry without a trustee")
	}
}
