package sip

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Transport is the SIP transport the publisher sends over.
type Transport string

// The transports a Publisher can use.
const (
	UDP Transport = "udp"
	TCP Transport = "tcp"
	TLS Transport = "tls"
)

// Defaults for the optional Config fields.
const (
	// DefaultExpires is the publication lifetime asked of the server when
	// Config.Expires is zero: an hour, the usual maximum of presence servers.
	DefaultExpires = time.Hour

	// DefaultTimeout bounds one PUBLISH transaction (with its digest
	// retry) when Config.Timeout is zero.
	DefaultTimeout = 10 * time.Second

	// MinExpires is the shortest publication lifetime Config accepts; a
	// shorter one would keep the publisher refreshing without pause.
	MinExpires = 2 * time.Second
)

// Config configures a Publisher. Server, Transport and Domain are required.
type Config struct {
	// Server is the presence server's host:port; every PUBLISH goes there.
	Server string
	// Transport is udp, tcp or tls; empty means udp.
	Transport Transport
	// Domain is the SIP domain of the presentities: extension 201 is
	// published as sip:201@Domain, the URI phones subscribe to.
	Domain string
	// Expires is the publication lifetime asked of the server (default
	// DefaultExpires). The server may grant a shorter one; the publisher
	// refreshes before the granted lifetime runs out.
	Expires time.Duration
	// Timeout bounds one PUBLISH transaction (default DefaultTimeout).
	Timeout time.Duration
	// Username and Password answer a 401 or 407 digest challenge. Both or
	// neither must be set. The password never enters a log line.
	Username string
	Password string
	// PublishPresence adds an Event: presence publication (PIDF with RPID
	// activities) beside the Event: dialog one.
	PublishPresence bool
	// TLSConfig is used with Transport tls (nil: system roots, TLS 1.2 or
	// later, the server name taken from Server).
	TLSConfig *tls.Config
	// Logger receives the publisher's log lines (nil: none).
	Logger *zap.Logger
}

// String describes the configuration for a start-up log line; it leaves
// out the password.
func (c Config) String() string {
	auth := "none"
	if c.Username != "" {
		auth = "digest user " + c.Username
	}
	return fmt.Sprintf("sip server=%s transport=%s domain=%s expires=%s auth=%s presence=%t",
		c.Server, c.transport(), c.Domain, c.expires(), auth, c.PublishPresence)
}

func (c Config) transport() Transport {
	if c.Transport == "" {
		return UDP
	}
	return Transport(strings.ToLower(string(c.Transport)))
}

func (c Config) expires() time.Duration {
	if c.Expires == 0 {
		return DefaultExpires
	}
	return c.Expires
}

func (c Config) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// domainRE matches a DNS name or an IPv4 address; IPv6 literals are
// checked apart.
var domainRE = regexp.MustCompile(
	`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// extensionRE matches an extension usable, unescaped, as the user part of a
// SIP URI: digits, letters and the unreserved marks . _ + - *.
var extensionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+*-]{0,63}$`)

// Validate reports the first problem of the configuration, naming the
// field, or nil.
func (c Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Server)
	if err != nil {
		return fmt.Errorf("sip config: server %q must be host:port: %w", c.Server, err)
	}
	if host == "" {
		return fmt.Errorf("sip config: server %q has no host", c.Server)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("sip config: server %q has an invalid port", c.Server)
	}

	switch c.transport() {
	case UDP, TCP:
		if c.TLSConfig != nil {
			return fmt.Errorf("sip config: TLSConfig is set but transport is %s", c.transport())
		}
	case TLS:
	default:
		return fmt.Errorf("sip config: transport %q is not udp, tcp or tls", c.Transport)
	}

	if !validDomain(c.Domain) {
		return fmt.Errorf("sip config: domain %q is not a host name or IP address", c.Domain)
	}

	if c.Expires != 0 && c.Expires < MinExpires {
		return fmt.Errorf("sip config: expires %s is shorter than %s", c.Expires, MinExpires)
	}
	if c.Expires%time.Second != 0 {
		return fmt.Errorf("sip config: expires %s is not a whole number of seconds", c.Expires)
	}
	if c.Timeout < 0 {
		return errors.New("sip config: timeout must not be negative")
	}

	if (c.Username == "") != (c.Password == "") {
		return errors.New("sip config: set both username and password, or neither")
	}
	if strings.ContainsAny(c.Username, "\"\\\r\n") {
		return errors.New("sip config: username holds a quote, backslash or line break")
	}
	return nil
}

func validDomain(d string) bool {
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		ip := net.ParseIP(d[1 : len(d)-1])
		return ip != nil && ip.To4() == nil
	}
	return len(d) <= 253 && domainRE.MatchString(d)
}

// ValidExtension reports whether ext can be published: it must be usable
// as the user part of a SIP URI without escaping.
func ValidExtension(ext string) bool {
	return extensionRE.MatchString(ext)
}
