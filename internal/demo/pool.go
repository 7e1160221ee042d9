package demo

import "crypto/x509"

func x509Pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	if c != nil {
		p.AddCert(c)
	}
	return p
}
