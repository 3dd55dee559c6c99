// Package apisurface holds the test that counts the exported identifiers of
// the public packages, so that the surface a user learns grows only on
// purpose.
package apisurface
