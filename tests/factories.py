"""factory-boy factories, one per model."""

from __future__ import annotations

import factory
from django.utils import timezone

from accounts.models import ApiToken, Organization, OrganizationMember, Team, User, UserEmail
from releases.models import (
    Commit,
    CommitAuthor,
    Deploy,
    Environment,
    Project,
    PullRequest,
    Release,
    ReleaseProject,
    ReleaseProjectEnvironment,
    Repository,
)
from releases.services import release_refresh_deploys
from releases.versioning import semver_columns


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    name = factory.LazyAttribute(lambda o: o.username.title())
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("password")


class UserEmailFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserEmail

    user = factory.SubFactory(UserFactory)
    email = factory.LazyAttribute(lambda o: o.user.email)
    is_verified = True


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    organization = factory.SubFactory(OrganizationFactory)
    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrganizationMember
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = OrganizationMember.Role.MEMBER

    @factory.post_generation
    def teams(self, create: bool, extracted: list[Team] | None, **kwargs: object) -> None:
        if create and extracted:
            self.teams.add(*extracted)


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    platform = "python"

    @factory.post_generation
    def teams(self, create: bool, extracted: list[Team] | None, **kwargs: object) -> None:
        if create and extracted:
            self.teams.add(*extracted)


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment
        django_get_or_create = ("organization", "name")

    organization = factory.SubFactory(OrganizationFactory)
    name = "production"


class RepositoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Repository

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"acme/repo-{n}")
    url = factory.LazyAttribute(lambda o: f"https://github.com/{o.name}")
    provider = "integrations:github"


class CommitAuthorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommitAuthor

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Author {n}")
    email = factory.Sequence(lambda n: f"author{n}@example.com")


class CommitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Commit

    repository = factory.SubFactory(RepositoryFactory)
    organization = factory.LazyAttribute(lambda o: o.repository.organization)
    key = factory.Sequence(lambda n: f"{n:040x}")
    message = factory.Sequence(lambda n: f"commit {n}")
    author = factory.SubFactory(
        CommitAuthorFactory, organization=factory.SelfAttribute("..organization")
    )


class PullRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PullRequest

    repository = factory.SubFactory(RepositoryFactory)
    organization = factory.LazyAttribute(lambda o: o.repository.organization)
    key = factory.Sequence(str)
    title = "A pull request"


class ReleaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Release
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    version = factory.Sequence(lambda n: f"app@1.0.{n}")

    @classmethod
    def _create(cls, model_class: type[Release], *args: object, **kwargs: object) -> Release:
        kwargs = {**semver_columns(str(kwargs["version"])), **kwargs}
        return super()._create(model_class, *args, **kwargs)

    @factory.post_generation
    def projects(self, create: bool, extracted: list[Project] | None, **kwargs: object) -> None:
        if create and extracted:
            for project in extracted:
                ReleaseProject.objects.create(release=self, project=project)


class ReleaseProjectEnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReleaseProjectEnvironment

    release = factory.SubFactory(ReleaseFactory)
    project = factory.SubFactory(ProjectFactory)
    environment = factory.SubFactory(
        EnvironmentFactory, organization=factory.SelfAttribute("..release.organization")
    )


class DeployFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Deploy
        skip_postgeneration_save = True

    release = factory.SubFactory(ReleaseFactory)
    organization = factory.LazyAttribute(lambda o: o.release.organization)
    environment = factory.SubFactory(
        EnvironmentFactory, organization=factory.SelfAttribute("..organization")
    )
    date_finished = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def counters(self, create: bool, extracted: object, **kwargs: object) -> None:
        """Keep the release's deployCount and lastDeploy as the app would."""
        if create:
            release_refresh_deploys(release=self.release)


def create_token(
    *, user: User | None = None, organization: Organization | None = None, scopes: list[str]
) -> str:
    """Create a token and return its secret (what a client sends)."""
    kind = ApiToken.Kind.ORGANIZATION if organization else ApiToken.Kind.USER
    token = ApiToken(kind=kind, user=user, organization=organization, scopes=scopes)
    secret = token.set_new_token()
    token.save()
    return secret
