package main

import "context"

func runServe(context.Context, *environment, []string) error   { return errNotBuilt }
func runRebuild(context.Context, *environment, []string) error { return errNotBuilt }
func runMigrate(context.Context, *environment, []string) error { return errNotBuilt }
func openESDB(context.Context, string) (closingStore, error)   { return nil, errNotBuilt }
