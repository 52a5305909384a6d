"""The Singer side: the target, its sinks, the message reader and BATCH files. The only
package that imports the Singer SDK; everything below it is plain Python."""
