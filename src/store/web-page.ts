/**
 * S3 answers in XML or with no body, and neither we nor vmbackup write objects as text/html: a
 * successful HTML answer with content is some other server's page (a console, a proxy's welcome
 * or login page). Empty answers pass whatever their type: some S3 servers (moto among them) label
 * their empty PUT and UploadPart answers text/html. Used by the S3 client for every command and
 * by the restore plan's presigned GETs, each with its own advice.
 */
export function isWebPage(contentType: string | undefined, contentLength: string | number | undefined): boolean {
  return contentType?.toLowerCase().startsWith('text/html') === true && Number(contentLength) !== 0;
}
